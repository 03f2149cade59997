"""Applying an object's children: build, mutate, create or update what is ours, prune, report the rest."""

from __future__ import annotations

import asyncio
import json
import logging
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from prometheus_client import Counter

from troupe.context import ChildKey, Children, Manifest, ReconcileContext
from troupe.engine.apply import (
    CREATE_ONLY_ANNOTATION,
    as_applied,
    as_kept,
    complete_child,
    holder,
    is_subset,
    owner_key,
)
from troupe.engine.availability import Availability, missing_message
from troupe.engine.cache import ChildIndex, ObjectKey, trimmed, version_of
from troupe.engine.client import ApiException, Kube, NotFound
from troupe.engine.metrics import OperatorMetrics
from troupe.engine.workqueue import stirred
from troupe.kinds import ChildKind, KindSpec
from troupe.plugins import KindHooks

logger = logging.getLogger(__name__)

#: Why an apply waits: the field managers cached are not the server's (an Update entry moved meanwhile).
_MANAGERS_CHANGED = json.dumps({"message": "its field managers changed meanwhile; applied again shortly"})

#: Children of one object applied at once, at most: a workflow level of ten pods goes in one wave.
APPLY_CONCURRENCY = 16
#: Refusals that no retry cures: the built manifest itself is wrong, so only a spec change helps.
PERMANENT_REFUSALS = frozenset({400, 422})


class InvalidChild(Exception):
    """A built manifest the core cannot apply: an undeclared kind, or a child the owner cannot have."""


@dataclass(frozen=True)
class Refusal:
    """The API server refused to apply a child."""

    child: ChildKey
    status: int
    message: str

    def __str__(self) -> str:
        return f"{self.child}: {self.message} (HTTP {self.status})"


@dataclass
class ApplyReport:
    """What applying an object's children came to: writes made, names held by others, refusals, and
    optional APIs not served."""

    wrote: bool = False
    conflicts: list[str] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def retryable(self) -> bool:
        return any(r.status not in PERMANENT_REFUSALS for r in self.refusals)


class Prepared(NamedTuple):
    """A built child, completed and mutated, and where it came from."""

    child: ChildKind
    manifest: Manifest
    key: ChildKey
    kept: Manifest | None
    """The observed child itself, when a builder returned it to keep it as it is."""


class _Kept(NamedTuple):
    """A child kept as observed, found unchanged: while neither it nor its owner is replaced by a new
    version, its completed manifest is the same and unchanged again."""

    observed: Manifest
    owner: Manifest  # the owner's metadata, as the builders were shown it
    manifest: Manifest


class ChildApplier:
    """Brings an object's children to what its builders return, touching only what the object owns."""

    def __init__(
        self,
        *,
        kube: Kube,
        children: ChildIndex,
        availability: Availability,
        metrics: dict[str, OperatorMetrics],
        hooks_of: Callable[[KindSpec], KindHooks],
    ) -> None:
        self.kube = kube
        self.children = children
        self.availability = availability
        self.metrics = metrics
        self.hooks_of = hooks_of
        #: True when the watch has listed ``child``'s kind where it lives and no object holds its name
        #: (the reconciler's name index): then it is created without a GET first. Default: always look.
        self.absent: Callable[[ChildKind, ChildKey], bool] = lambda child, key: False
        #: Waits until the owner's decided status is on record (the status writer's ``settled``): a child
        #: is deleted on a status that is written only, since a plugin may decide deletions from its status
        #: (a finished attempt's pod), and a lost write must not leave the record without that attempt.
        self.settled: Callable[[ObjectKey], Awaitable[bool]] = _on_record
        #: By owner: the children its builders keep as observed that were found unchanged. A workflow
        #: keeps every pod it made; copying, completing, mutating and comparing each again in every
        #: reconcile was a third of the reconcile of a hundred pods.
        self._kept: dict[str, dict[ChildKey, _Kept]] = {}
        self._declarations: dict[tuple[int, str, str], ChildKind | None] = {}

    def forget(self, owner: str) -> None:
        """``owner`` (its ``troupe.dev/owner`` key) is gone: drop what is remembered of its children."""
        self._kept.pop(owner, None)

    async def apply(
        self,
        ctx: ReconcileContext[Any],
        again: Callable[[], ReconcileContext[Any] | None] | None = None,
    ) -> tuple[ApplyReport, ReconcileContext[Any]]:
        """Build, mutate and apply an object's children, then prune; returns the report and the context
        with the children as applied.

        ``again``: the object's context now, or None when it changed beyond its children (called while
        creates are in flight and a new event came, see :meth:`_meanwhile`). The context returned is
        the last one the builders ran on."""
        report = ApplyReport()
        prepared = self._prepare(ctx, report)
        slots = asyncio.Semaphore(APPLY_CONCURRENCY)
        seen = await self._observe(prepared, slots)
        for item, observed in zip(prepared, seen, strict=True):
            taken_by = holder(observed, ctx.body, self.kube.field_manager) if observed is not None else None
            if taken_by is not None:
                report.conflicts.append(f"{item.key} is held by {taken_by}")
        if report.conflicts:
            # Nothing is written while any name is held by someone else: a Deployment must not start on a
            # user's claim that merely has the name of the one it should have had.
            return report, ctx

        async def ensure_one(
            child: ChildKind, manifest: Manifest, observed: Manifest | None
        ) -> Manifest | None:
            async with slots:
                return await self.ensure(ctx, child, manifest, report, observed)

        # Namespaces and cluster-scoped children first: namespaced children may live in them. Within a
        # wave children are independent objects, applied side by side (N round trips become about one).
        # Children that need no write are settled here, without a task each (most, in a large owner).
        applied: dict[ChildKey, Manifest] = {}
        latest = ctx
        owner = owner_key(ctx.kind, ctx.namespace, ctx.name)
        known, kept = self._kept.get(owner, {}), {}
        for namespaced in (False, True):
            wave = []
            for (child, manifest, key, source), observed in zip(prepared, seen, strict=True):
                if child.namespaced != namespaced:
                    continue
                before = known.get(key)
                if before is not None and before.manifest is manifest and before.observed is observed:
                    kept[key] = before  # found unchanged before, and neither it nor its owner changed
                    applied[key] = observed
                elif observed is not None and unchanged(manifest, observed):
                    if source is not None and source is observed:
                        kept[key] = _Kept(observed, ctx.body["metadata"], manifest)
                    applied[key] = observed
                else:
                    wave.append((child, manifest, observed))
            work: list[asyncio.Future[Manifest | None]] = [
                asyncio.ensure_future(ensure_one(c, m, o)) for c, m, o in wave
            ]
            if namespaced and again is not None and work:
                latest = await self._meanwhile(ctx, again, wave, work, ensure_one, report, slots)
            results = await asyncio.gather(*work)
            for (_, manifest, _), observed in zip(wave, results, strict=True):
                if observed is not None:
                    applied[ChildKey.of(manifest)] = observed
            if report.conflicts:  # a name taken meanwhile: nothing more for this owner (the rule above)
                return report, replace(latest, children=Children({**latest.children, **applied}))
        self._kept[owner] = kept
        pruned = await self._prune(ctx, {item.key for item in prepared}, report)
        children = {key: obj for key, obj in {**latest.children, **applied}.items() if key not in pruned}
        return report, replace(latest, children=Children(children))

    def _prepare(self, ctx: ReconcileContext[Any], report: ApplyReport) -> list[Prepared]:
        """The builders' children, completed and mutated; kinds not served go into ``report.missing``.

        A builder may return a child it observed, the object from ``ctx.children`` itself, to keep it as
        it is (a workflow's finished pods): the core completes and mutates a copy of it (less its status
        and what the server owns) like any built child, and does so again only once the child or its
        owner changed."""
        hooks = self.hooks_of(ctx.kind)
        desired = [m for batch in hooks.troupe_build_resources(ctx=ctx) for m in batch or []]
        # No call per child when no plugin mutates this kind's children (most operators).
        mutate = hooks.troupe_mutate_resource if hooks.troupe_mutate_resource.get_hookimpls() else None
        known = self._kept.get(owner_key(ctx.kind, ctx.namespace, ctx.name), {})
        prepared = []
        for manifest in desired:
            child = self._child_kind(ctx.kind, manifest)
            if not self.availability.served(child):
                if missing_message(child) not in report.missing:
                    report.missing.append(missing_message(child))
                continue
            source = None
            if "uid" in (manifest.get("metadata") or {}):  # built manifests have none: maybe an observed one
                key = ChildKey.of(manifest)
                if ctx.children.get(key) is manifest:
                    source = manifest
                    before = known.get(key)
                    if (
                        before is not None
                        and before.observed is source
                        and before.owner is ctx.body["metadata"]
                    ):
                        prepared.append(Prepared(child, before.manifest, key, source))
                        continue
                    manifest = as_kept(source)  # the observed object itself is never written into
            try:
                complete_child(ctx.kind, ctx.body, manifest, child)
            except ValueError as exc:
                raise InvalidChild(str(exc)) from exc
            if mutate is not None:
                mutate(ctx=ctx, resource=manifest)
            prepared.append(Prepared(child, manifest, ChildKey.of(manifest), source))
        return prepared

    async def _observe(self, prepared: list[Prepared], slots: asyncio.Semaphore) -> list[Manifest | None]:
        """What exists of each child: what the caches know is read here; only names they cannot vouch
        for are asked about, side by side (a task per child, for the hundred pods of a workflow that are
        all known, was a tenth of its reconcile and let every pending event run in between)."""

        async def look(child: ChildKind, key: ChildKey) -> Manifest | None:
            async with slots:
                return await self.kube.get(child.api_version, child.plural, key.namespace, key.name)

        seen: list[Manifest | None] = []
        asks = []
        for child, _, key, _ in prepared:
            found = self.children.find(key)
            if found is None and not self.absent(child, key):  # not ours, or not known free: ask
                asks.append((len(seen), look(child, key)))
            seen.append(found)
        for (index, _), answer in zip(asks, await asyncio.gather(*(a for _, a in asks)), strict=True):
            seen[index] = answer
        return seen

    async def _meanwhile(
        self,
        ctx: ReconcileContext[Any],
        again: Callable[[], ReconcileContext[Any] | None],
        wave: list[tuple[ChildKind, Manifest, Manifest | None]],
        work: list[asyncio.Future[Manifest | None]],
        ensure_one: Callable[[ChildKind, Manifest, Manifest | None], Awaitable[Manifest | None]],
        report: ApplyReport,
        slots: asyncio.Semaphore,
    ) -> ReconcileContext[Any]:
        """While this run's writes are in flight, create what new events make the builders build.

        The run stays the object's only one: it waits for the answers it needs anyway, and a child event
        meanwhile (a workflow's pod that succeeded) starts the pods it lets start now, instead of after
        the answers and a run of its own. The builders see the children as the API server confirmed them
        (a create not answered yet is not shown, so nothing is built on it) and are never sent what this
        run sent already. Only creates of names free by the usual rules go out here; anything else (an
        update, a prune, the status) is the rerun's, which comes after as always. A conflict or a refusal
        stops it: nothing more is written for this owner. An event that came by the time the last answer
        did is acted on too, once: its creates go out now, not after this run's status and a rerun.
        Returns the context the builders last ran on."""
        stir = stirred()
        latest = shown = ctx  # what the builders last ran on; what the last look saw
        looked_idle = False  # looked once with every answer in
        while stir is not None:
            waiting: list[asyncio.Future[Any]] = [w for w in work if not w.done()]
            if waiting:
                nudged = asyncio.ensure_future(stir.wait())
                await asyncio.wait([*waiting, nudged], return_when=FIRST_COMPLETED)
                nudged.cancel()
                if not stir.is_set():
                    continue
            elif looked_idle or not stir.is_set():
                break
            looked_idle = all(w.done() for w in work)
            stir.clear()
            if report.conflicts or report.refusals:
                break
            fresh = again()
            if fresh is None:
                break  # deleted, replaced or edited: the rerun sees to it
            answers = {  # this run's creates and updates: their answers, None until answered
                ChildKey.of(m): w.result() if w.done() and w.exception() is None else None
                for (_, m, _), w in zip(wave, work, strict=True)
            }
            sent = answers.keys()
            news = self._news(owner_key(ctx.kind, ctx.namespace, ctx.name), shown, fresh, answers)
            shown = fresh
            if not news:
                continue  # only this run's own creates showing up: nothing to build on
            try:
                prepared = self._prepare(fresh, ApplyReport())
            except InvalidChild:
                break  # the rerun reports it
            latest = fresh
            new = [
                item
                for item in prepared
                if item.child.namespaced and item.key not in fresh.children and item.key not in sent
            ]
            for (child, manifest, key, _), observed in zip(new, await self._observe(new, slots), strict=True):
                if observed is not None:
                    taken_by = holder(observed, ctx.body, self.kube.field_manager)
                    if taken_by is not None:
                        report.conflicts.append(f"{key} is held by {taken_by}")
                    continue  # one of ours the watch has not shown the builders yet: the rerun's
                if not report.conflicts:
                    wave.append((child, manifest, None))
                    work.append(asyncio.ensure_future(ensure_one(child, manifest, None)))
                    looked_idle = False
        return latest

    async def _prune(
        self, ctx: ReconcileContext[Any], desired: set[ChildKey], report: ApplyReport
    ) -> set[ChildKey]:
        """Delete this object's own children of pruned kinds that the builders no longer return."""
        pruned: set[ChildKey] = set()
        settled = False
        for key, observed in ctx.children.items():
            spec = self._declared(ctx.kind, observed)
            if key in desired or spec is None or not spec.prune:
                continue
            meta = observed["metadata"]
            if meta.get("deletionTimestamp") or holder(observed, ctx.body, self.kube.field_manager):
                continue
            if not settled:
                owner = ObjectKey(ctx.kind, ctx.namespace if ctx.kind.namespaced else None, ctx.name)
                if not await self.settled(owner):
                    logger.info("%s: pruning waits until its status is written", ctx.name)
                    return pruned
                settled = True
            if await self.kube.delete(
                spec.api_version, spec.plural, key.namespace, key.name, uid=meta.get("uid")
            ):
                self.metrics[ctx.kind.operator].writes.labels(verb="delete").inc()
                logger.info("%s: deleted %s (no longer desired)", ctx.name, key)
                pruned.add(key)
                report.wrote = True
        return pruned

    def _news(
        self,
        owner: str,
        before: ReconcileContext[Any],
        now: ReconcileContext[Any],
        created: dict[ChildKey, Manifest | None],
    ) -> bool:
        """Has anything changed between two looks of one run that its builders read, beyond the children
        it created itself showing up as created (``created``: their answers, None until answered)?

        A change counts as the watch counts it (the child kind's ``reads``, what was applied, the start
        of a deletion; a child appearing or going): a pod the scheduler bound is no news, one that
        finished is, also when it is one this run created (in a fast workflow a run outlives them)."""
        if now.body["metadata"].get("resourceVersion") != before.body["metadata"].get("resourceVersion"):
            return True
        for key, child in now.children.items():
            shown = before.children.get(key)
            if shown is child:
                continue
            if shown is None and key in created:  # one of this run's creates showing up
                answer = created[key]
                if answer is None:  # not answered yet: what others wrote to it may be news
                    if _written_by_others(child, self.kube.field_manager):
                        return True
                    continue
                shown = trimmed(answer)
            if shown is None or (
                version_of(shown) != version_of(child) and self.children.concerns(owner, key, shown, child)
            ):
                return True
        return any(key not in now.children and key not in created for key in before.children)

    def _declared(self, kind: KindSpec, manifest: Manifest) -> ChildKind | None:
        # Looked up for every child of every reconcile: once per (owner kind, apiVersion, kind) will do.
        found = (id(kind), manifest.get("apiVersion", ""), manifest.get("kind", ""))
        if found not in self._declarations:
            self._declarations[found] = kind.child(found[1], found[2])
        return self._declarations[found]

    def _child_kind(self, kind: KindSpec, manifest: Manifest) -> ChildKind:
        child = self._declared(kind, manifest)
        if child is not None and child.observe_only:
            raise InvalidChild(
                f"a plugin built a {child.kind}, which {kind.kind} declares observe-only (another controller "
                "makes those; the operator may not write them)"
            )
        if child is None:
            raise InvalidChild(
                f"a plugin built a {manifest.get('apiVersion')} {manifest.get('kind')} but {kind.kind} "
                "does not declare that child kind (KindSpec.children)"
            )
        return child

    async def ensure(
        self,
        ctx: ReconcileContext[Any],
        child: ChildKind,
        manifest: Manifest,
        report: ApplyReport,
        observed: Manifest | None,
    ) -> Manifest | None:
        """Bring one child to ``manifest`` given what is ``observed`` of it (this owner's own, or nothing);
        returns what is observed afterwards (None: not applied).

        Created when its name is free; written again only when some desired field differs (or never, for
        create-only children). A name taken in between is a conflict; an API error is reported with the
        server's message.
        """
        key = ChildKey.of(manifest)
        if observed is not None and unchanged(manifest, observed):
            return observed
        writes = self.metrics[ctx.kind.operator].writes
        try:
            if observed is None:
                # A create, not an apply: it never merges our fields into an object someone made in
                # between; a 409 means someone holds the name (made meanwhile, or never seen by the watch).
                result = await self.kube.create(manifest, child.plural, key.namespace)
                writes.labels(verb="create").inc()
            else:
                await self._as_applied(child, key, observed, writes)
                # Force only over an object that is ours.
                result = await self.kube.apply(manifest, child.plural, key.namespace, force=True)
                writes.labels(verb="apply").inc()
        except ApiException as exc:
            if exc.status == 403 and "being terminated" in (exc.body or ""):
                logger.debug("%s: not applied, its namespace is being deleted", key)
                return None  # the namespace goes, and everything in it: nothing to report
            if exc.status == 409 and observed is None:
                return await self._taken(ctx, child, manifest, report)
            report.refusals.append(Refusal(key, exc.status or 0, api_message(exc)))
            return None
        self.children.put(result, ours=True)
        report.wrote = True
        return result

    async def _as_applied(self, child: ChildKind, key: ChildKey, observed: Manifest, writes: Counter) -> None:
        """Before the first apply to a child we created: its fields become the apply's (see
        :func:`as_applied`). A 409 when its field managers changed meanwhile (retried)."""
        patch = as_applied(observed, self.kube.field_manager)
        if patch is None:
            return
        try:
            migrated = await self.kube.json_patch(
                child.api_version, child.plural, key.namespace, key.name, patch
            )
        except NotFound:
            return  # deleted meanwhile: the apply creates it again, as an apply
        except ApiException as exc:
            if exc.status == 422:  # a test failed: the cached field managers are not the server's
                raise ApiException(status=409, reason="Conflict", body=_MANAGERS_CHANGED) from exc
            raise
        writes.labels(verb="patch").inc()
        self.children.put(migrated, ours=True)

    async def _taken(
        self, ctx: ReconcileContext[Any], child: ChildKind, manifest: Manifest, report: ApplyReport
    ) -> Manifest | None:
        """A create found the name taken: by this owner's own child (its watch event not in yet), which
        is then applied as ours, or by someone else, a conflict naming them."""
        key = ChildKey.of(manifest)
        found = await self.kube.get(child.api_version, child.plural, key.namespace, key.name)
        if found is None:
            report.conflicts.append(f"{key} was created and deleted by someone else meanwhile")
            return None
        taken_by = holder(found, ctx.body, self.kube.field_manager)
        if taken_by is not None:
            report.conflicts.append(f"{key} is held by {taken_by}")
            return None
        return await self.ensure(ctx, child, manifest, report, found)


def _written_by_others(child: Manifest, manager: str) -> bool:
    """Has a field manager other than ours written to ``child`` (as its managed fields tell)?"""
    entries = (child.get("metadata") or {}).get("managedFields") or []
    return any(entry.get("manager") != manager for entry in entries)


def unchanged(manifest: Manifest, observed: Manifest) -> bool:
    """No write needed: every desired field is as observed, or the child is created once and kept."""
    create_only = manifest["metadata"]["annotations"].get(CREATE_ONLY_ANNOTATION) == "true"
    return create_only or is_subset(manifest, observed)


async def _on_record(owner: ObjectKey) -> bool:
    return True


def api_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message", exc.reason))
    except (TypeError, ValueError):
        return str(exc.reason)
