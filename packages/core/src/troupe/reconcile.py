"""The generic reconcile of one object: validate, build, mutate, apply, prune, aggregate status."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import kopf
import pluggy
from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from troupe.apply import (
    CREATE_ONLY_ANNOTATION,
    OWNER_ANNOTATION,
    child_identity,
    complete_child,
    is_subset,
    owner_key,
)
from troupe.cache import ChildIndex, ObjectCache
from troupe.client import Kube, NotFound
from troupe.clock import Clock, isoformat
from troupe.context import Children, Manifest, ReconcileContext, StatusUpdate
from troupe.health import WatchActivity
from troupe.kinds import ChildKind, KindSpec
from troupe.metrics import OperatorMetrics
from troupe.status import desired_status, events_for, failed, status_patch

logger = logging.getLogger(__name__)

#: Re-reconcile after a TemporaryError without its own delay.
DEFAULT_RETRY = 10.0
#: Children of one object applied at once, at most.
APPLY_CONCURRENCY = 8
#: Look again this soon when a child kind's initial listing has not arrived yet (start-up).
LISTING_RECHECK = 0.5


class InvalidChild(Exception):
    """A built manifest the core cannot apply: an undeclared kind, or one the API server refused."""


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
        self.pm = pm
        self.activity = activity
        self.kube = kube
        self.clock = clock
        self.metrics = metrics
        self.objects = ObjectCache()
        self.children = ChildIndex()

    # -- contexts -------------------------------------------------------------------------------

    def context(self, key: ObjectKey, body: Manifest) -> ReconcileContext[Any]:
        """Parse the spec and gather the children; raises ValidationError on a bad spec."""
        spec = key.kind.spec_model.model_validate(body.get("spec") or {})
        return ReconcileContext(
            kind=key.kind, body=body, spec=spec, now=self.clock(), children=self.children.children(key.owner)
        )

    def children_listed(self, key: ObjectKey) -> bool:
        """Every child kind's watch has delivered its initial listing for this object's namespace.

        Until then an existing child looks absent: a builder would make a new password, a scheduler a
        second pod. Waiting for the listings after a start costs a fraction of a second.
        """
        if self.activity is None:
            return True
        return all(
            self.activity.has_listed(f"{child.plural}@*")
            or (key.namespace is not None and self.activity.has_listed(f"{child.plural}@{key.namespace}"))
            for child in key.kind.children
        )

    # -- the reconcile --------------------------------------------------------------------------

    async def reconcile(self, key: ObjectKey) -> float | None:
        """Reconcile one object; returns when to look again (seconds) or None."""
        body = self.objects.get(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        if not self.children_listed(key):
            return LISTING_RECHECK
        metrics = self.metrics[key.kind.operator]
        started = time.perf_counter()
        result = "error"
        try:
            delay, result = await self._reconcile(key, body)
            return delay
        except kopf.TemporaryError as exc:
            logger.info("%s: %s; retrying in %ss", key, exc, exc.delay or DEFAULT_RETRY)
            result = "unchanged"
            return float(exc.delay or DEFAULT_RETRY)
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
        errors = [e for batch in self.pm.hook.troupe_validate(ctx=ctx) for e in batch or []]
        if errors:
            return await self._fail(key, body, "InvalidSpec", "; ".join(errors))
        try:
            wrote, ctx = await self._apply_children(ctx)
        except (kopf.PermanentError, InvalidChild) as exc:
            return await self._fail(key, body, "ApplyFailed", str(exc))
        update = self.pm.hook.troupe_aggregate_status(ctx=ctx) or StatusUpdate(phase="Ready")
        wrote |= await self.write_status(key, ctx.body, update, ctx=ctx)
        if update.delete:
            await self.delete_object(key)
            wrote = True
        return min(update.requeue_after or key.kind.resync_seconds, key.kind.resync_seconds), (
            "applied" if wrote else "unchanged"
        )

    async def _fail(self, key: ObjectKey, body: Manifest, reason: str, message: str) -> tuple[None, str]:
        logger.warning("%s failed: %s", key, message)
        await self.write_status(key, body, failed(reason, message))
        return None, "failed"

    async def _apply_children(self, ctx: ReconcileContext[Any]) -> tuple[bool, ReconcileContext[Any]]:
        kind = ctx.kind
        desired = [m for batch in self.pm.hook.troupe_build_resources(ctx=ctx) for m in batch or []]
        wrote = False
        applied: dict[tuple[str, str], Manifest] = {}
        pruned: set[tuple[str, str]] = set()
        prepared = []
        for manifest in desired:
            child = self._child_kind(kind, manifest)
            complete_child(kind, ctx.body, manifest, child)
            self.pm.hook.troupe_mutate_resource(ctx=ctx, resource=manifest)
            prepared.append((child, manifest))
        # Children are independent objects in the owner's scope: applying them side by side turns N
        # round trips into about one (a workflow level of ten pods, a workshop of many participants).
        slots = asyncio.Semaphore(APPLY_CONCURRENCY)

        async def ensure_one(child: ChildKind, manifest: Manifest) -> tuple[Manifest, bool]:
            async with slots:
                return await self.ensure(child, manifest)

        results = await asyncio.gather(*(ensure_one(c, m) for c, m in prepared))
        for (_, manifest), (observed, did_write) in zip(prepared, results, strict=True):
            applied[child_identity(manifest)] = observed
            wrote |= did_write
        for (child_kind, name), observed in ctx.children.items():
            spec = self._declared(kind, observed)
            if (child_kind, name) in applied or spec is None or not spec.prune:
                continue
            if observed["metadata"].get("deletionTimestamp"):
                continue
            meta = observed["metadata"]
            if await self.kube.delete(spec.api_version, spec.plural, meta.get("namespace"), name):
                self.metrics[kind.operator].writes.labels(verb="delete").inc()
                logger.info("%s: deleted %s %s (no longer desired)", ctx.name, child_kind, name)
                pruned.add((child_kind, name))
                wrote = True
        children = {key: obj for key, obj in {**ctx.children, **applied}.items() if key not in pruned}
        return wrote, ReconcileContext(
            kind=kind, body=ctx.body, spec=ctx.spec, now=ctx.now, children=Children(children)
        )

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

    async def ensure(self, child: ChildKind, manifest: Manifest) -> tuple[Manifest, bool]:
        """Apply ``manifest`` unless the observed object already has every field of it (or is create-only)."""
        meta = manifest["metadata"]
        namespace = meta.get("namespace") if child.namespaced else None
        observed = self.children.get(meta["annotations"][OWNER_ANNOTATION], child_identity(manifest))
        if observed is None:  # not seen on the watch yet (start-up): ask, rather than write blindly
            observed = await self.kube.get(child.api_version, child.plural, namespace, meta["name"])
        if observed is not None and (
            meta["annotations"].get(CREATE_ONLY_ANNOTATION) == "true" or is_subset(manifest, observed)
        ):
            return observed, False
        try:
            result = await self.kube.apply(manifest, child.plural, namespace)
        except ApiException as exc:
            if exc.status in (400, 403, 422):
                raise InvalidChild(f"{manifest['kind']} {meta['name']}: {_api_message(exc)}") from exc
            raise
        operator = meta["labels"]["app.kubernetes.io/managed-by"].removeprefix("troupe-")
        if operator in self.metrics:
            self.metrics[operator].writes.labels(verb="apply").inc()
        self.children.put(result)
        return result, True

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
        if not self.children_listed(key):  # an unlisted child would look gone, and be left to GC unordered
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
                children=self.children.children(key.owner),
            )
        else:
            try:
                _, ctx = await self._apply_children(ctx)
            except InvalidChild as exc:
                logger.warning("%s: teardown could not apply a child: %s", key, exc)
        self.pm.hook.troupe_finalize(ctx=ctx)

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
                self.pm.hook.troupe_status_changed(ctx=ctx, old=observed, new=result.get("status") or {})
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


def _api_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message", exc.reason))
    except (TypeError, ValueError):
        return str(exc.reason)
