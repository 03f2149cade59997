"""The generic reconcile of one object: validate, build, mutate, apply, prune, aggregate status."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
import kopf
import pluggy
from pydantic import ValidationError

from troupe.clock import Clock
from troupe.context import AdmissionState, ChildKey, Children, Manifest, ReconcileContext, StatusUpdate
from troupe.engine.actions import ActionRunner
from troupe.engine.admission import line_up, newly_admitted
from troupe.engine.availability import Availability, missing_message
from troupe.engine.cache import ChildIndex, ObjectCache, ObjectKey, RelatedIndex, same_but_status
from troupe.engine.children import ChildApplier, InvalidChild, api_message
from troupe.engine.client import ApiException, Kube, NotFound
from troupe.engine.health import WatchActivity
from troupe.engine.metrics import OperatorMetrics
from troupe.engine.names import NameIndex
from troupe.engine.reporting import StatusWriter, with_blockers
from troupe.engine.status import failed
from troupe.kinds import ChildKind, KindSpec
from troupe.plugins import KindHooks, collect_kinds, kind_hooks

logger = logging.getLogger(__name__)

#: Re-reconcile after a TemporaryError without its own delay.
DEFAULT_RETRY = 10.0
#: Look again this soon when a child kind's initial listing has not arrived yet (start-up). The arrival
#: of a listing runs the objects that waited for it at once: this is only the fallback, and a short one
#: woke 1,000 waiting objects twice a second while a restart's listings took the CPU.
LISTING_RECHECK = 10.0
#: While a child's name is held by someone else, look again this often (their object is not watched).
CONFLICT_RECHECK = 15.0
#: Retries of an object whose children the API server refused with a status that may pass (5xx, 429,
#: 403, 404: a quota, a full Service range, a missing namespace or permission): 1 s doubling to 5 min.
RETRY_BACKOFF = (1.0, 300.0)


def format_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in ("spec", *err["loc"]))
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


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
        finalizer: str = "troupe.dev/finalizer",
    ) -> None:
        self.hooks = kind_hooks(pm)
        self.finalizer = finalizer
        self.activity = activity
        self.kube = kube
        self.clock = clock
        self.metrics = metrics
        self.objects = ObjectCache()
        kinds = collect_kinds(pm)  # every plugin's troupe_kinds, asked once
        self.children = ChildIndex(kinds, own_manager=kube.field_manager)
        self.related = RelatedIndex()
        self.availability = Availability()
        self.actions = ActionRunner(kube, clock, done=lambda key: None)
        self.applier = ChildApplier(
            kube=kube,
            children=self.children,
            availability=self.availability,
            metrics=metrics,
            hooks_of=self.hooks_of,
        )
        self.reporter = StatusWriter(
            kube=kube, clock=clock, objects=self.objects, metrics=metrics, hooks_of=self.hooks_of
        )
        self.applier.settled = self.reporter.settled  # children are deleted on a status on record only
        self.names = NameIndex(
            (child.group, child.kind)
            for kind in kinds
            for child in kind.children
            if not child.observe_only  # never written: no name of theirs to know
        )
        self.applier.absent = self.absent
        #: Each object's parsed spec by (uid, generation): the generation changes with every spec edit,
        #: and most reconciles (a child's event) see the same spec again.
        self._specs: dict[ObjectKey, tuple[str, int, Any]] = {}
        self._failures: dict[ObjectKey, int] = {}
        #: Objects that waited for a listing: run again as soon as one arrives, not at the next recheck.
        self.gated: set[ObjectKey] = set()
        self._lines: dict[KindSpec, dict[object, AdmissionState]] = {}
        #: Told of each object whose set of referrers changed (the runtime enqueues those it reconciles).
        self.on_referrers: Callable[[ChildKey], None] = lambda key: None
        #: The kinds reconciled here that reference each kind (group, kind): their listings gate its objects.
        self.referrer_kinds: dict[tuple[str, str], tuple[KindSpec, ...]] = {}

    def hooks_of(self, kind: KindSpec) -> KindHooks:
        return self.hooks[kind.group, kind.kind]

    # -- contexts -------------------------------------------------------------------------------

    def put(self, key: ObjectKey, body: Manifest, *, ours: bool = False) -> bool:
        """An object's latest body (from its watch, or the response to a write of ours), and the related
        objects it references now; True when it is a version not seen before (not the echo of our own
        status or finalizer write)."""
        before = self.objects.get(key)
        # The watch may bring our status write back before its response: the status being sent, nothing
        # else changed. Taken as ours, it starts no reconcile of an object that has none running.
        echo = not ours and before is not None and self._status_echo(key, before, body)
        fresh = self.objects.put(key, body, ours=ours or echo) and not echo
        uses: set[ChildKey] = set()
        for rel in key.kind.related:
            try:
                refs = list(rel.references(body))
            except Exception:  # a references function is a plugin's; a bad spec must not stop the watch
                logger.exception("%s: the references of %s could not be read", key, rel.kind)
                refs = []
            uses |= {ChildKey(rel.group, rel.kind, ns if rel.namespaced else None, name) for ns, name in refs}
        for referenced in self.related.track(key, uses):
            self.on_referrers(referenced)
        return fresh

    def _status_echo(self, key: ObjectKey, before: Manifest, body: Manifest) -> bool:
        sending = self.reporter.sending(key)
        return sending is not None and body.get("status") == sending and same_but_status(before, body)

    def forget(self, key: ObjectKey) -> None:
        self.actions.cancel(key)
        self._specs.pop(key, None)
        self.objects.pop(key)
        self.children.forget(key.owner)
        self.applier.forget(key.owner)
        for referenced in self.related.forget(key):
            self.on_referrers(referenced)

    def referrers(self, key: ObjectKey) -> Children:
        """The objects reconciled here whose related kinds' references name ``key``'s object."""
        target = ChildKey(key.kind.group, key.kind.kind, key.namespace, key.name)
        found = {}
        for user in self.related.users([target]):
            body = self.objects.get(user)
            if isinstance(user, ObjectKey) and body is not None:
                found[ChildKey(user.kind.group, user.kind.kind, user.namespace, user.name)] = body
        return Children(found)

    def context(self, key: ObjectKey, body: Manifest) -> ReconcileContext[Any]:
        """Parse the spec, gather the children and related objects; raises ValidationError on a bad spec."""
        return ReconcileContext(
            kind=key.kind,
            body=body,
            spec=self.spec(key, body),
            now=self.clock(),
            children=self.children.children(key.owner, str(body["metadata"].get("uid", ""))),
            related=self.related.view(key),
            admission=self.line(key.kind).get(key, AdmissionState(admitted=True)),
            referrers=self.referrers(key),
        )

    def spec(self, key: ObjectKey, body: Manifest) -> Any:
        """The object's spec as its kind's model, parsed once per generation; raises ValidationError."""
        meta = body["metadata"]
        uid, generation = str(meta.get("uid", "")), int(meta.get("generation") or 0)
        cached = self._specs.get(key)
        if cached is not None and cached[:2] == (uid, generation) and generation:
            return cached[2]
        spec = key.kind.spec_model.model_validate(body.get("spec") or {})
        self._specs[key] = (uid, generation, spec)
        return spec

    def line(self, kind: KindSpec) -> dict[object, AdmissionState]:
        """The admission states of ``kind``'s objects that hold or wait for a slot (empty: no admission)."""
        admission = kind.admission
        if admission is None:
            return {}
        members = [
            (key, self.reporter.current(key, body)) for key, body in self.objects.items() if key.kind is kind
        ]
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
        """Every child and related kind's watch has delivered its initial listing for this object, and
        so has the watch of each kind reconciled here that may reference it.

        Until then an existing child looks absent (a builder would make a new password, a scheduler a
        second pod), a related object looks missing and a referrer unknown. Waiting after a start costs
        a fraction of a second. A kind whose optional API is not served has nothing to list.
        """
        if self.activity is None:
            return True
        referrers = self.referrer_kinds.get((key.kind.group, key.kind.kind), ())
        return all(
            self.listed_in(dep.plural, key.namespace)
            for dep in (*key.kind.watched, *referrers)
            if isinstance(dep, KindSpec) or self.availability.served(dep)
        )

    def listed_in(self, plural: str, namespace: str | None) -> bool:
        """The watch of ``plural`` has delivered its initial listing, cluster-wide or in ``namespace``."""
        if self.activity is None:
            return True
        where = [f"{plural}@*"] + ([f"{plural}@{namespace}"] if namespace else [])
        return any(self.activity.has_listed(stream) for stream in where)

    def absent(self, child: ChildKind, key: ChildKey) -> bool:
        """No object holds ``key``'s name as far as the watch of its kind can tell: the kind's listing has
        arrived for the child's namespace (or cluster-wide) and no event showed that name since."""
        if self.activity is None or not self.names.tracks(key) or self.names.taken(key):
            return False
        return self.listed_in(child.plural, key.namespace)

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
        """Reconcile one object (or tear it down, when it is being deleted and holds our finalizer);
        returns when to look again (seconds) or None."""
        body = self.reporter.current(key, self.objects.get(key))  # with the status decided, if not written
        if body is None:
            return None
        deleting = bool(body["metadata"].get("deletionTimestamp"))
        if deleting and self.finalizer not in (body["metadata"].get("finalizers") or []):
            return None
        if not self.listed(key):
            self.gated.add(key)
            return LISTING_RECHECK
        metrics = self.metrics[key.kind.operator]
        started = time.perf_counter()
        result = "error"
        try:
            if deleting:
                return await self._tear_down(key, body)
            if key.kind.finalize and self.finalizer not in (body["metadata"].get("finalizers") or []):
                body = await self._hold(key, body)
            delay, result = await self._reconcile(key, body)
            if result != "retrying":
                self._failures.pop(key, None)
            return delay
        except NotFound:  # deleted meanwhile: its DELETED event is on its way
            result = "unchanged"
            return None
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
        observed = set(ctx.children)

        def again() -> ReconcileContext[Any] | None:
            """The context now, while this run's creates are in flight; None once the object is not the
            one this run started on (deleted, replaced, its spec edited or being deleted)."""
            now = self.reporter.current(key, self.objects.get(key))
            if now is None or now["metadata"].get("deletionTimestamp"):
                return None
            meta, before = now["metadata"], body["metadata"]
            if (meta.get("uid"), meta.get("generation")) != (before.get("uid"), before.get("generation")):
                return None
            return self.context(key, now)  # the spec of this generation parses: it did just now

        try:
            report, ctx = await self.applier.apply(ctx, again)
        except (kopf.PermanentError, InvalidChild) as exc:
            return await self._fail(key, body, "ApplyFailed", str(exc))
        # Builders may build on what they observe (a workspace's objects once its Namespace is there). The
        # watch event of a child we just created is our own echo and starts no reconcile: when the builders,
        # shown what was created, build more, look again now.
        deferred = bool(set(ctx.children) - observed) and self.builds_more(ctx)
        report.missing.extend(self.missing_related(key))
        if report.refusals:
            message = "the API server refused " + "; ".join(str(r) for r in report.refusals)
            await self.reporter.write(key, body, failed("ApplyFailed", message))
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
                # A step that ended before its "Running" was on record is recorded again here; the hooks
                # decided this status on "Running": look again at once, with its end before them.
                deferred |= any(r.get("phase") in ("Succeeded", "Failed") for r in started.values())
        blockers = {"NameConflict": report.conflicts, "MissingAPI": report.missing}
        blocked = with_blockers(update, blockers, body.get("status") or {})
        wrote = report.wrote | await self.reporter.write(key, ctx.body, blocked, ctx=ctx)
        if blocked.delete:
            await self.delete_object(key)
            wrote = True
        delay = min(update.requeue_after or key.kind.resync_seconds, key.kind.resync_seconds)
        if report.conflicts:
            delay = min(delay, CONFLICT_RECHECK)
        if deferred:
            delay = 0.0
        return delay, ("applied" if wrote else "unchanged")

    def builds_more(self, ctx: ReconcileContext[Any]) -> bool:
        """Do the builders, run on ``ctx``'s children as applied, return a child not among them yet?
        (Builders are pure: running them again costs no API call.)"""
        for batch in self.hooks_of(ctx.kind).troupe_build_resources(ctx=ctx):
            for manifest in batch or []:
                child = ctx.kind.child(manifest.get("apiVersion", ""), manifest.get("kind", ""))
                if child is None or not self.availability.served(child):
                    continue  # refused or reported by the apply already
                meta = manifest.get("metadata") or {}
                namespace = (meta.get("namespace") or ctx.namespace) if child.namespaced else None
                key = ChildKey(child.group, child.kind, namespace, str(meta.get("name", "")))
                if key not in ctx.children:
                    return True
        return False

    def backoff(self, key: ObjectKey) -> float:
        """The next retry delay of an object that keeps failing (reset by a reconcile that does not)."""
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        first, cap = RETRY_BACKOFF
        return float(min(first * 2 ** min(failures - 1, 16), cap))

    async def _fail(self, key: ObjectKey, body: Manifest, reason: str, message: str) -> tuple[None, str]:
        logger.warning("%s failed: %s", key, message)
        await self.reporter.write(key, body, failed(reason, message))
        return None, "failed"

    async def _hold(self, key: ObjectKey, body: Manifest) -> Manifest:
        """Put our finalizer on an object of a ``finalize=True`` kind before it gets any child."""
        meta = body["metadata"]
        ops: list[dict[str, Any]]
        if meta.get("finalizers"):
            ops = [{"op": "add", "path": "/metadata/finalizers/-", "value": self.finalizer}]
        else:
            ops = [{"op": "add", "path": "/metadata/finalizers", "value": [self.finalizer]}]
        test = [{"op": "test", "path": "/metadata/resourceVersion", "value": meta.get("resourceVersion")}]
        held = await self.kube.json_patch(
            key.kind.api_version, key.kind.plural, key.namespace, key.name, test + ops
        )
        self.metrics[key.kind.operator].writes.labels(verb="finalizer").inc()
        self.put(key, held, ours=True)
        return held

    async def _tear_down(self, key: ObjectKey, body: Manifest) -> float | None:
        """One step of an ordered teardown; the finalizer goes once every finalize hook is satisfied."""
        try:
            await self.finalize(key, body)
        except kopf.TemporaryError as exc:
            logger.info("%s: %s", key, exc)  # a step of the teardown, not a failure
            return float(exc.delay or DEFAULT_RETRY)
        finalizers = body["metadata"].get("finalizers") or []
        index = finalizers.index(self.finalizer)
        path = f"/metadata/finalizers/{index}"
        ops = [{"op": "test", "path": path, "value": self.finalizer}, {"op": "remove", "path": path}]
        try:
            await self.kube.json_patch(key.kind.api_version, key.kind.plural, key.namespace, key.name, ops)
        except NotFound:
            return None
        self.metrics[key.kind.operator].writes.labels(verb="finalizer").inc()
        logger.info("%s: torn down; finalizer removed", key)
        return None

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
                referrers=self.referrers(key),
            )
        else:
            try:
                report, ctx = await self.applier.apply(ctx)
            except InvalidChild as exc:
                logger.warning("%s: teardown could not apply a child: %s", key, exc)
            else:
                for problem in [*report.conflicts, *map(str, report.refusals)]:
                    logger.warning("%s: teardown: %s", key, problem)
        self.hooks_of(ctx.kind).troupe_finalize(ctx=ctx)

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


def _describe(exc: Exception) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status}: {api_message(exc)}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
