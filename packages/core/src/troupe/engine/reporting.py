"""Reporting an object's state: the status patch, blocking conditions, Events for transitions."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from troupe.clock import Clock, isoformat
from troupe.conditions import Condition
from troupe.context import Manifest, ReconcileContext, StatusUpdate
from troupe.engine.cache import ObjectCache, ObjectKey
from troupe.engine.client import ApiException, Kube, NotFound
from troupe.engine.metrics import OperatorMetrics
from troupe.engine.status import desired_status, events_for, status_patch
from troupe.kinds import KindSpec
from troupe.plugins import KindHooks

logger = logging.getLogger(__name__)


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


def worth_posting(
    events: list[tuple[str, str, str]], observed: Manifest, desired: Manifest
) -> list[tuple[str, str, str]]:
    """The Events worth a write: every Warning, and Ready turning True (the object is done).

    The steps in between (Creating, waiting for this, then that) are in the status already; an Event for
    each was a write per step and per object, for nothing a user reads in ``kubectl describe``.
    """
    ready = next((c for c in desired.get("conditions") or [] if c.get("type") == "Ready"), None)
    was: Manifest = next((c for c in observed.get("conditions") or [] if c.get("type") == "Ready"), {})
    arrived = ready is not None and ready.get("status") == "True" and was.get("status") != "True"
    final = (ready["reason"], ready["message"] or "Ready") if arrived and ready else None
    posted = [e for e in events if e[0] == "Warning"]
    # events_for says (type, reason, message): Ready's own is the first Normal one saying what it says
    posted += [e for e in events if e[0] == "Normal" and e[1:] == final][:1]
    return posted


class StatusWriter:
    """Writes status only when it changes, posts the Events its transitions deserve, tells the hooks."""

    def __init__(
        self,
        *,
        kube: Kube,
        clock: Clock,
        objects: ObjectCache,
        metrics: dict[str, OperatorMetrics],
        hooks_of: Callable[[KindSpec], KindHooks],
    ) -> None:
        self.kube = kube
        self.clock = clock
        self.objects = objects
        self.metrics = metrics
        self.hooks_of = hooks_of

    async def write(
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
        self.objects.put(key, result, ours=True)
        for type_, reason, message in worth_posting(events_for(observed, desired), observed, desired):
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
            if "being terminated" in (exc.body or ""):  # the namespace goes, and its events with it
                logger.debug("%s: no event %s: the namespace is being deleted", key, reason)
                return
            logger.warning("%s: could not post event %s: %s", key, reason, exc.reason)
