"""The generic reconcile of one object: validate, build, mutate, apply, prune, aggregate status."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import kopf
import pluggy
from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from troupe.actions import ActionRunner
from troupe.admission import line_up, newly_admitted
from troupe.apply import CREATE_ONLY_ANNOTATION, complete_child, holder, is_subset, owner_key
from troupe.availability import Availability, missing_message
from troupe.cache import ChildIndex, ObjectCache, RelatedIndex
from troupe.client import Kube, NotFound
from troupe.clock import Clock, isoformat
from troupe.conditions import Condition
from troupe.context import AdmissionState, ChildKey, Children, Manifest, ReconcileContext, StatusUpdate
from troupe.health import WatchActivity
from troupe.kinds import ChildKind, KindSpec
from troupe.metrics import OperatorMetrics
from troupe.plugins import KindHooks, kind_hooks
from troupe.status import desired_status, events_for, failed, status_patch

logger = logging.getLogger(__name__)

#: Re-reconcile after a TemporaryError without its own delay.
DEFAULT_RETRY = 10.0
#: Children of one object applied at once, at most.
APPLY_CONCURRENCY = 8
#: Look again this soon when a child kind's initial listing has not arrived yet (start-up).
LISTING_RECHECK = 0.5


#: While a child's name is held by someone else, look again this often (their object is not watched).
CONFLICT_RECHECK = 15.0
#: Retries of an object whose children the API server refused with a status that may pass (5xx, 429,
#: 403, 404: a quota, a full Service range, a missing namespace or permission): 1 s doubling to 5 min.
RETRY_BACKOFF = (1.0, 300.0)
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


def format_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in ("spec", *err["loc"]))
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


@dataclass(frozen=True)
class ObjectKey:
    kind: KindSpec
    namespace: str | None
    name: str

    @property
    def owner(self) -> str:
        return owner_key(self.kind, self.namespace, self.name)

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind.kind} {where}{self.name}"


class Reconciler:
    """Reconciles objects of the operator's kinds from the caches the watch handlers fill."""

    def __init__(
        self,
        *,
        pm: pluggy.PluginManager,
        kube: Kube,
        clock: Clock,
        metrics: dict[str, OperatorMetrics],
        activity: WatchActivity | None = None,
    ) -> None:
        self.hooks = kind_hooks(pm)
        self.activity = activity
        self.kube = kube
        self.clock = clock
        self.metrics = metrics
        self.objects = ObjectCache()
        self.children = ChildIndex()
        self.related = RelatedIndex()
        self.availability = Availability()
        self.actions = ActionRunner(kube, clock, done=lambda key: None)
        self._failures: dict[ObjectKey, int] = {}
        self._lines: dict[KindSpec, dict[object, AdmissionState]] = {}

    def hooks_of(self, kind: KindSpec) -> KindHooks:
        return self.hooks[kind.group, kind.kind]

    # -- contexts -------------------------------------------------------------------------------

    def put(self, key: ObjectKey, body: Manifest) -> None:
        """An object's latest body from its watch, and the related objects it references now."""
        self.objects.put(key, body)
        uses: set[ChildKey] = set()
        for rel in key.kind.related:
            try:
                refs = list(rel.references(body))
            except Exception:  # a references function is a plugin's; a bad spec must not stop the watch
                logger.exception("%s: the references of %s could not be read", key, rel.kind)
                refs = []
            uses |= {ChildKey(rel.group, rel.kind, ns if rel.namespaced else None, name) for ns, name in refs}
        self.related.track(key, uses)

    def forget(self, key: ObjectKey) -> None:
        self.actions.cancel(key)
        self.objects.pop(key)
        self.children.forget(key.owner)
        self.related.forget(key)

    def context(self, key: ObjectKey, body: Manifest) -> ReconcileContext[Any]:
        """Parse the spec, gather the children and related objects; raises ValidationError on a bad spec."""
        spec = key.kind.spec_model.model_validate(body.get("spec") or {})
        return ReconcileContext(
            kind=key.kind,
            body=body,
            spec=spec,
            now=self.clock(),
            children=self.children.children(key.owner, str(body["metadata"].get("uid", ""))),
            related=self.related.view(key),
            admission=self.line(key.kind).get(key, AdmissionState(admitted=True)),
        )

    def line(self, kind: KindSpec) -> dict[object, AdmissionState]:
        """The admission states of ``kind``'s objects that hold or wait for a slot (empty: no admission)."""
        admission = kind.admission
        if admission is None:
            return {}
        members = [(key, body) for key, body in self.objects.items() if key.kind is kind]
        # The limit lives in a related object (a policy) that every member references; any one will do.
        limit = next(
            (
                admission.limit(self.related.view(key))
                for key, body in members
                if admission.holding(body) or admission.waiting(body)
            ),
            None,
        )
        return line_up(admission, members, limit)

    def admission_changes(self, kind: KindSpec) -> list[object]:
        """Objects admitted since the last look: a freed slot or a raised limit lets the next one in."""
        after = self.line(kind)
        before, self._lines[kind] = self._lines.get(kind, {}), after
        return newly_admitted(before, after)

    def listed(self, key: ObjectKey) -> bool:
        """Every child and related kind's watch has delivered its initial listing for this object.

        Until then an existing child looks absent (a builder would make a new password, a scheduler a
        second pod) and a related object looks missing. Waiting after a start costs a fraction of a second.
        A kind whose optional API is not served has nothing to list.
        """
        if self.activity is None:
            return True
        return all(
            self.activity.has_listed(f"{dep.plural}@*")
            or (key.namespace is not None and self.activity.has_listed(f"{dep.plural}@{key.namespace}"))
            for dep in key.kind.watched
            if self.availability.served(dep)
        )

    def missing_related(self, key: ObjectKey) -> list[str]:
        """The related kinds this object references whose optional API is not served."""
        used = {(ref.group, ref.kind) for ref in self.related.uses(key)}
        return [
            missing_message(rel)
            for rel in key.kind.related
            if not self.availability.served(rel) and (rel.group, rel.kind) in used
        ]

    # -- the reconcile --------------------------------------------------------------------------

    async def reconcile(self, key: ObjectKey) -> float | None:
        """Reconcile one object; returns when to look again (seconds) or None."""
        body = self.objects.get(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        if not self.listed(key):
            return LISTING_RECHECK
        metrics = self.metrics[key.kind.operator]
        started = time.perf_counter()
        result = "error"
        try:
            delay, result = await self._reconcile(key, body)
            if result != "retrying":
                self._failures.pop(key, None)
            return delay
        except kopf.TemporaryError as exc:
            logger.info("%s: %s; retrying in %ss", key, exc, exc.delay or DEFAULT_RETRY)
            result = "unchanged"
            return float(exc.delay or DEFAULT_RETRY)
        except (ApiException, aiohttp.ClientError, TimeoutError) as exc:
            # The API server is away or refused a write of ours (not a child's): no traceback, a backoff.
            metrics.errors.labels(kind=key.kind.kind).inc()
            delay = self.backoff(key)
            logger.warning("%s: API request failed (%s); retrying in %.0fs", key, _describe(exc), delay)
            return delay
        except Exception:
            metrics.errors.labels(kind=key.kind.kind).inc()
            raise
        finally:
            metrics.reconciles.labels(kind=key.kind.kind, result=result).inc()
            metrics.duration.labels(kind=key.kind.kind).observe(time.perf_counter() - started)

    async def _reconcile(self, key: ObjectKey, body: Manifest) -> tuple[float | None, str]:
        try:
            ctx = self.context(key, body)
        except ValidationError as exc:
            return await self._fail(key, body, "InvalidSpec", format_validation_error(exc))
        errors = [e for batch in self.hooks_of(ctx.kind).troupe_validate(ctx=ctx) for e in batch or []]
        if errors:
            return await self._fail(key, body, "InvalidSpec", "; ".join(errors))
        try:
            report, ctx = await self._apply_children(ctx)
        except (kopf.PermanentError, InvalidChild) as exc:
            return await self._fail(key, body, "ApplyFailed", str(exc))
        report.missing.extend(self.missing_related(key))
        if report.refusals:
            message = "the API server refused " + "; ".join(str(r) for r in report.refusals)
            await self.write_status(key, body, failed("ApplyFailed", message))
            if report.retryable:
                delay = self.backoff(key)
                logger.warning("%s: %s; retrying in %.0fs", key, message, delay)
                return delay, "retrying"
            logger.warning("%s failed: %s", key, message)
            return None, "failed"
        update = self.hooks_of(ctx.kind).troupe_aggregate_status(ctx=ctx) or StatusUpdate(phase="Ready")
        if update.actions or key.kind.actions:
            try:
                started = self.actions.plan(
                    key, (key.kind, key.namespace, key.name), update.actions, ctx.status
                )
            except ValueError as exc:
                return await self._fail(key, body, "InvalidAction", str(exc))
            if started:
                update.fields["actions"] = {**(ctx.status.get("actions") or {}), **started}
        blockers = {"NameConflict": report.conflicts, "MissingAPI": report.missing}
        blocked = with_blockers(update, blockers, body.get("status") or {})
        wrote = report.wrote | await self.write_status(key, ctx.body, blocked, ctx=ctx)
        if blocked.delete:
            await self.delete_object(key)
            wrote = True
        delay = min(update.requeue_after or key.kind.resync_seconds, key.kind.resync_seconds)
        if report.conflicts:
            delay = min(delay, CONFLICT_RECHECK)
        return delay, ("applied" if wrote else "unchanged")

    def backoff(self, key: ObjectKey) -> float:
        """The next retry delay of an object that keeps failing (reset by a reconcile that does not)."""
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        first, cap = RETRY_BACKOFF
        return float(min(first * 2 ** min(failures - 1, 16), cap))

    async def _fail(self, key: ObjectKey, body: Manifest, reason: str, message: str) -> tuple[None, str]:
        logger.warning("%s failed: %s", key, message)
        await self.write_status(key, body, failed(reason, message))
        return None, "failed"

    async def _apply_children(self, ctx: ReconcileContext[Any]) -> tuple[ApplyReport, ReconcileContext[Any]]:
        kind = ctx.kind
        desired = [
            m for batch in self.hooks_of(ctx.kind).troupe_build_resources(ctx=ctx) for m in batch or []
        ]
        report = ApplyReport()
        prepared = []
        for manifest in desired:
            child = self._child_kind(kind, manifest)
            if not self.availability.served(child):
                if missing_message(child) not in report.missing:
                    report.missing.append(missing_message(child))
                continue
            try:
                complete_child(kind, ctx.body, manifest, child)
            except ValueError as exc:
                raise InvalidChild(str(exc)) from exc
            self.hooks_of(ctx.kind).troupe_mutate_resource(ctx=ctx, resource=manifest)
            prepared.append((child, manifest))
        # Namespaces and cluster-scoped children first: namespaced children may live in them. Within a
        # wave children are independent objects, applied side by side (N round trips become about one).
        slots = asyncio.Semaphore(APPLY_CONCURRENCY)

        async def ensure_one(child: ChildKind, manifest: Manifest) -> Manifest | None:
            async with slots:
                return await self.ensure(ctx, child, manifest, report)

        applied: dict[ChildKey, Manifest] = {}
        for wave in (
            [(c, m) for c, m in prepared if not c.namespaced],
            [(c, m) for c, m in prepared if c.namespaced],
        ):
            results = await asyncio.gather(*(ensure_one(c, m) for c, m in wave))
            for (_, manifest), observed in zip(wave, results, strict=True):
                if observed is not None:
                    applied[ChildKey.of(manifest)] = observed
        pruned = await self._prune(ctx, {ChildKey.of(m) for _, m in prepared}, report)
        children = {key: obj for key, obj in {**ctx.children, **applied}.items() if key not in pruned}
        return report, replace(ctx, children=Children(children))

    async def _prune(
        self, ctx: ReconcileContext[Any], desired: set[ChildKey], report: ApplyReport
    ) -> set[ChildKey]:
        """Delete this object's own children of pruned kinds that the builders no longer return."""
        pruned: set[ChildKey] = set()
        for key, observed in ctx.children.items():
            spec = self._declared(ctx.kind, observed)
            if key in desired or spec is None or not spec.prune:
                continue
            meta = observed["metadata"]
            if meta.get("deletionTimestamp") or holder(observed, ctx.body, self.kube.field_manager):
                continue
            if await self.kube.delete(
                spec.api_version, spec.plural, key.namespace, key.name, uid=meta.get("uid")
            ):
                self.metrics[ctx.kind.operator].writes.labels(verb="delete").inc()
                logger.info("%s: deleted %s (no longer desired)", ctx.name, key)
                pruned.add(key)
                report.wrote = True
        return pruned

    @staticmethod
    def _declared(kind: KindSpec, manifest: Manifest) -> ChildKind | None:
        return kind.child(manifest.get("apiVersion", ""), manifest.get("kind", ""))

    def _child_kind(self, kind: KindSpec, manifest: Manifest) -> ChildKind:
        child = self._declared(kind, manifest)
        if child is None:
            raise InvalidChild(
                f"a plugin built a {manifest.get('apiVersion')} {manifest.get('kind')} but {kind.kind} "
                "does not declare that child kind (KindSpec.children)"
            )
        return child

    async def ensure(
        self, ctx: ReconcileContext[Any], child: ChildKind, manifest: Manifest, report: ApplyReport
    ) -> Manifest | None:
        """Bring one child to ``manifest``; returns what is observed of it (None: it is not ours).

        Created when its name is free; written again only when it is this owner's own child and some
        desired field differs (or never, for create-only children). A name held by any other object is
        reported as a conflict and nothing is written; an API error is reported with the server's message.
        """
        key = ChildKey.of(manifest)
        observed = self.children.find(key)
        if observed is None:  # not seen on the watch (start-up, or not ours): ask, rather than write blindly
            observed = await self.kube.get(child.api_version, child.plural, key.namespace, key.name)
        if observed is not None:
            taken_by = holder(observed, ctx.body, self.kube.field_manager)
            if taken_by is not None:
                report.conflicts.append(f"{key} is held by {taken_by}")
                return None
            if manifest["metadata"]["annotations"].get(CREATE_ONLY_ANNOTATION) == "true" or is_subset(
                manifest, observed
            ):
                return observed
        try:
            # Force only over an object that is ours; a create races nobody's fields, and a 409 means
            # someone created the name in between.
            result = await self.kube.apply(manifest, child.plural, key.namespace, force=observed is not None)
        except ApiException as exc:
            if exc.status == 409 and observed is None:
                report.conflicts.append(f"{key} was created by someone else meanwhile: {_api_message(exc)}")
            else:
                report.refusals.append(Refusal(key, exc.status or 0, _api_message(exc)))
            return None
        self.metrics[ctx.kind.operator].writes.labels(verb="apply").inc()
        self.children.put(result)
        report.wrote = True
        return result

    async def finalize(self, key: ObjectKey, body: Manifest) -> None:
        """The deletion of an object of a ``finalize=True`` kind: ordered teardown, then the finalize hooks.

        The builders run once more with ``ctx.deleting`` True and return what should still exist during
        teardown; children of pruned kinds they leave out are deleted now. Then every
        ``troupe_finalize`` runs; one raising ``kopf.TemporaryError`` makes kopf call this again later,
        so a teardown in steps (Ingress, then Service, then Deployment) is a builder that returns less
        each time and a finalize hook that waits until the children it cares about are gone.
        A spec that no longer parses skips the builders (nothing is deleted on a guess) and the finalize
        hooks see the model's defaults, which are the data-keeping choices.
        """
        if not self.listed(key):  # an unlisted child would look gone, and be left to GC unordered
            raise kopf.TemporaryError(
                "waiting for the initial listing of the children", delay=LISTING_RECHECK
            )
        try:
            ctx = self.context(key, body)
        except ValidationError:
            ctx = ReconcileContext(
                kind=key.kind,
                body=body,
                spec=key.kind.spec_model.model_construct(),
                now=self.clock(),
                children=self.children.children(key.owner, str(body["metadata"].get("uid", ""))),
                related=self.related.view(key),
            )
        else:
            try:
                report, ctx = await self._apply_children(ctx)
            except InvalidChild as exc:
                logger.warning("%s: teardown could not apply a child: %s", key, exc)
            else:
                for problem in [*report.conflicts, *map(str, report.refusals)]:
                    logger.warning("%s: teardown: %s", key, problem)
        self.hooks_of(ctx.kind).troupe_finalize(ctx=ctx)

    # -- status and the object itself -----------------------------------------------------------

    async def write_status(
        self,
        key: ObjectKey,
        body: Manifest,
        update: StatusUpdate,
        *,
        ctx: ReconcileContext[Any] | None = None,
    ) -> bool:
        """Patch the status subresource if ``update`` changes it; post Events for transitions."""
        observed = body.get("status") or {}
        now = self.clock()
        desired = desired_status(
            observed, update, now=now, generation=int(body["metadata"].get("generation", 0))
        )
        patch = status_patch(observed, desired)
        if patch is None:
            return False
        metrics = self.metrics[key.kind.operator]
        try:
            result = await self.kube.patch_status(
                key.kind.api_version, key.kind.plural, key.namespace, key.name, patch
            )
        except NotFound:  # deleted meanwhile: nothing left to report on
            return False
        metrics.writes.labels(verb="status").inc()
        self.objects.put(key, result)
        for type_, reason, message in events_for(observed, desired):
            await self.post_event(key, result, type_, reason, message, now=isoformat(now))
        if ctx is not None:
            try:
                self.hooks_of(ctx.kind).troupe_status_changed(
                    ctx=ctx, old=observed, new=result.get("status") or {}
                )
            except Exception:
                logger.exception("%s: a troupe_status_changed hook failed", key)
        return True

    async def post_event(
        self, key: ObjectKey, body: Manifest, type_: str, reason: str, message: str, *, now: str
    ) -> None:
        meta = body["metadata"]
        namespace = key.namespace or "default"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{key.name}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": key.kind.api_version,
                "kind": key.kind.kind,
                "name": key.name,
                "namespace": key.namespace,
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": f"troupe-{key.kind.operator}"},
            "reportingComponent": f"troupe.dev/{key.kind.operator}",
        }
        try:
            await self.kube.request("POST", f"/api/v1/namespaces/{namespace}/events", body=event)
            self.metrics[key.kind.operator].writes.labels(verb="event").inc()
        except ApiException as exc:  # an event is a courtesy; never fail a reconcile for it
            logger.warning("%s: could not post event %s: %s", key, reason, exc.reason)

    async def delete_object(self, key: ObjectKey) -> None:
        await self.kube.delete(key.kind.api_version, key.kind.plural, key.namespace, key.name)
        self.metrics[key.kind.operator].writes.labels(verb="delete").inc()

    def phase_counts(self, operator: str) -> dict[tuple[str, str], int]:
        """Objects of ``operator``'s kinds by (kind, phase), from the watch cache."""
        counts: Counter[tuple[str, str]] = Counter()
        for key, body in self.objects.items():
            if key.kind.operator == operator:
                counts[key.kind.kind, (body.get("status") or {}).get("phase") or "Pending"] += 1
        return dict(counts)


#: What each blocking condition tells the user to do, after the list of what blocks.
BLOCKER_ADVICE = {
    "NameConflict": "rename or remove that object, or rename this one",
    "MissingAPI": "install it; this object proceeds once it is served",
}


def with_blockers(update: StatusUpdate, blockers: dict[str, list[str]], observed: Manifest) -> StatusUpdate:
    """``update`` with the core's blocking conditions (NameConflict, MissingAPI).

    A blocker with entries is True, names each entry and makes Ready False (the object cannot be ready,
    and is not deleted at its end of life while blocked); one that was True before and has none now
    turns False. The plugin's phase stands.
    """
    held_before = {c.get("type") for c in observed.get("conditions") or [] if c.get("status") == "True"}
    conditions = list(update.conditions)
    blocking = [(type_, entries) for type_, entries in blockers.items() if entries]
    for type_, entries in blockers.items():
        if entries:
            message = "; ".join(entries) + ": " + BLOCKER_ADVICE[type_]
            conditions = [c for c in conditions if c.type != type_]
            conditions.append(Condition(type=type_, status="True", reason=type_, message=message))
        elif type_ in held_before:
            conditions.append(
                Condition(type=type_, status="False", reason="Resolved", message="nothing blocks")
            )
    if blocking:
        type_, _ = blocking[0]
        reason = next(c.message for c in conditions if c.type == type_)
        conditions = [c for c in conditions if c.type != "Ready"]
        conditions.append(Condition(type="Ready", status="False", reason=type_, message=reason))
    elif not any(c.type == "Ready" for c in conditions):
        # A plugin that reports no Ready of its own leaves it to the core: the blocker's False must go.
        ready: Manifest = next((c for c in observed.get("conditions") or [] if c.get("type") == "Ready"), {})
        if ready.get("reason") in BLOCKER_ADVICE:
            conditions.append(Condition(type="Ready", status="True", reason="Reconciled", message=""))
    return replace(update, conditions=conditions, delete=update.delete and not blocking)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status}: {_api_message(exc)}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _api_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message", exc.reason))
    except (TypeError, ValueError):
        return str(exc.reason)
