"""Reporting an object's state: the status patch, blocking conditions, Events for transitions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, overload

import aiohttp

from troupe.clock import Clock, isoformat
from troupe.conditions import Condition
from troupe.context import Manifest, ReconcileContext, StatusUpdate
from troupe.engine.cache import ObjectCache, ObjectKey
from troupe.engine.client import ApiException, Kube, NotFound
from troupe.engine.metrics import OperatorMetrics
from troupe.engine.status import desired_status, events_for, merge_patch, updated_status
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


#: A status write waits this long after the object's last one (seconds), unless its phase or a condition
#: changes: a status moving a few times a second is written about once a second, while a transition a
#: user or another controller waits for is written at once. Each write of a large object costs the API
#: server tens of milliseconds (on the CPU that also creates the next pods), whatever the patch's size.
#: A kind may set its own (``KindSpec.status_interval``).
WRITE_INTERVAL = 1.0
#: Retries of a status write the API server could not take (unreachable, 5xx, 429): 1 s doubling to 30 s.
WRITE_BACKOFF = (1.0, 30.0)
#: Refusals no retry of the same status cures (the plugin's status breaks the schema): dropped.
PERMANENT_REFUSALS = frozenset({400, 403, 422})


@dataclass
class PendingStatus:
    """What is decided for one object's status and not yet on record."""

    uid: str
    written: Manifest
    """The status on record as far as this writer knows: the base of the next patch."""
    target: Manifest
    """The status once every decided change is written; what the next reconcile reads."""
    events: list[tuple[str, str, str]] = field(default_factory=list)
    ctx: ReconcileContext[Any] | None = None
    urgent: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the next write may not wait for :data:`WRITE_INTERVAL`."""


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
    """Writes status only when it changes, posts the Events its transitions deserve, tells the hooks.

    With ``background`` (the operator's runtime) a reconcile does not wait for its status write: the
    change is queued and written by one task per object, which sends the newest status decided by then
    (so reconciles that come faster than the API server takes a write share one write) as a merge patch
    of what differs from the status on record. Meanwhile :meth:`current` gives reconciles the status
    as decided, not an older one from the watch, and :meth:`settled` lets a step that must not act on
    an unrecorded status (deleting a child) wait until it is on record. The status write of a large
    object costs the API server tens of milliseconds whatever the patch's size; off the reconcile path,
    the next children are created without waiting for it. Without ``background`` each write completes
    before :meth:`write` returns, and a failed one raises (the reconcile backs off).
    """

    def __init__(
        self,
        *,
        kube: Kube,
        clock: Clock,
        objects: ObjectCache,
        metrics: dict[str, OperatorMetrics],
        hooks_of: Callable[[KindSpec], KindHooks],
        background: bool = True,
        interval: float = WRITE_INTERVAL,
    ) -> None:
        self.kube = kube
        self.clock = clock
        self.objects = objects
        self.metrics = metrics
        self.hooks_of = hooks_of
        self.background = background
        self.interval = interval
        self._last_write: dict[ObjectKey, float] = {}
        self._pending: dict[ObjectKey, PendingStatus] = {}
        self._writers: dict[ObjectKey, asyncio.Task[None]] = {}
        self._errors: dict[ObjectKey, Exception] = {}
        self._failures: dict[ObjectKey, int] = {}
        self._sending: dict[ObjectKey, Manifest] = {}

    def sending(self, key: ObjectKey) -> Manifest | None:
        """The status being written for ``key`` right now: its watch event may come before the response."""
        return self._sending.get(key)

    @overload
    def current(self, key: ObjectKey, body: Manifest) -> Manifest: ...
    @overload
    def current(self, key: ObjectKey, body: None) -> None: ...
    @overload
    def current(self, key: ObjectKey, body: Manifest | None) -> Manifest | None: ...
    def current(self, key: ObjectKey, body: Manifest | None) -> Manifest | None:
        """``body`` with the status decided for it and not yet on record, if any."""
        pending = self._pending.get(key)
        if body is None or pending is None or pending.uid != _uid(body):
            return body
        return {**body, "status": pending.target}

    async def write(
        self,
        key: ObjectKey,
        body: Manifest,
        update: StatusUpdate,
        *,
        ctx: ReconcileContext[Any] | None = None,
    ) -> bool:
        """Queue the status ``update`` implies if it changes anything (True); write it before returning
        when not in the background, or when the object is to be deleted next."""
        pending = self._pending.get(key)
        if pending is not None and pending.uid != _uid(body):  # another object of that name now
            self._pending.pop(key)
            pending = None
        base = pending.target if pending is not None else body.get("status") or {}
        now = self.clock()
        desired = desired_status(base, update, now=now, generation=int(body["metadata"].get("generation", 0)))
        target = updated_status(base, desired)
        if target == base:
            return False
        events = worth_posting(events_for(base, desired), base, desired)
        if pending is None:
            pending = self._pending[key] = PendingStatus(_uid(body), base, target, events, ctx)
        else:
            pending.target, pending.ctx = target, ctx
            pending.events.extend(events)
        # Against the status that will be on record: a change decided while a transition is on its way is
        # no transition itself unless it changes the phase or a condition again.
        if _transition(self._sending.get(key, pending.written), target):
            pending.urgent.set()
        if self.background and not update.delete:
            self._start(key)
            return True
        await self.settled(key, strict=True)
        return True

    async def settled(self, key: ObjectKey, *, strict: bool = False) -> bool:
        """Write what is decided for ``key``'s status now, or wait for the write under way; False when it
        could not be written (in the background it stays queued and is retried, unless refused).
        ``strict``: raise the API error instead."""
        pending = self._pending.get(key)
        if pending is None:
            return True
        pending.urgent.set()
        self._start(key)
        await asyncio.shield(self._writers[key])
        error = self._errors.pop(key, None)
        if strict and error is not None:
            raise error
        return error is None and key not in self._pending

    def _start(self, key: ObjectKey) -> None:
        running = self._writers.get(key)
        if running is not None and not running.done():
            return
        writer = asyncio.create_task(self._write_pending(key), name=f"status {key}")
        self._writers[key] = writer
        writer.add_done_callback(
            lambda done: self._writers.pop(key) if self._writers.get(key) is done else None
        )

    async def _write_pending(self, key: ObjectKey) -> None:
        """Write the newest decided status until none is left; on an error keep it for a retry later
        (background) or drop it (the reconcile that decided it raises and backs off)."""
        while (pending := self._pending.get(key)) is not None:
            body = self.objects.get(key)
            if body is None or _uid(body) != pending.uid:  # deleted (or replaced) meanwhile
                self._pending.pop(key, None)
                return
            interval = self._interval(key)
            wait = self._last_write.get(key, -interval) + interval - asyncio.get_running_loop().time()
            if wait > 0 and not pending.urgent.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(pending.urgent.wait(), wait)
                continue  # whatever is decided by now goes in this write
            target, events, ctx = pending.target, pending.events, pending.ctx
            pending.events = []
            pending.urgent.clear()
            self._sending[key] = target
            try:
                result = await self._send(key, pending.written, target)
            except NotFound:  # deleted meanwhile: nothing left to report on
                self._pending.pop(key, None)
                return
            except (ApiException, aiohttp.ClientError, TimeoutError) as exc:
                pending.events[:0] = events
                self._errors[key] = exc
                self._retry_later(key, exc)
                return
            finally:
                self._sending.pop(key, None)
            self._failures.pop(key, None)
            self._errors.pop(key, None)
            self._wrote_at(key)
            old, pending.written = pending.written, target
            if pending.target is target:
                self._pending.pop(key, None)
            await self._report(key, result, old, events, ctx)

    def _wrote_at(self, key: ObjectKey) -> None:
        """Note the time of ``key``'s write, forgotten after the interval (objects come and go)."""
        loop = asyncio.get_running_loop()
        now = self._last_write[key] = loop.time()
        loop.call_later(self._interval(key), self._forget_write, key, now)

    def _interval(self, key: ObjectKey) -> float:
        """The least time between two writes of ``key``'s status that change no phase or condition."""
        own = key.kind.status_interval
        return self.interval if own is None else own

    def _forget_write(self, key: ObjectKey, at: float) -> None:
        if self._last_write.get(key) == at:
            del self._last_write[key]

    def _retry_later(self, key: ObjectKey, exc: Exception) -> None:
        status = exc.status if isinstance(exc, ApiException) else None
        if not self.background or status in PERMANENT_REFUSALS:
            self._pending.pop(key, None)  # the next reconcile starts again from the status on record
            if self.background:
                logger.warning("%s: the status was refused, not written: %s", key, exc)
            return
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        first, cap = WRITE_BACKOFF
        delay = min(first * 2 ** (failures - 1), cap)
        self.metrics[key.kind.operator].errors.labels(kind=key.kind.kind).inc()
        logger.warning("%s: status write failed (%s); retrying in %.0fs", key, exc, delay)
        asyncio.get_running_loop().call_later(delay, self._start, key)

    async def _send(self, key: ObjectKey, written: Manifest, target: Manifest) -> Manifest:
        patch = merge_patch(written, target)
        result = await self.kube.patch_status(
            key.kind.api_version, key.kind.plural, key.namespace, key.name, patch or {}
        )
        self.metrics[key.kind.operator].writes.labels(verb="status").inc()
        self.objects.put(key, result, ours=True)
        return result

    async def _report(
        self,
        key: ObjectKey,
        result: Manifest,
        old: Manifest,
        events: list[tuple[str, str, str]],
        ctx: ReconcileContext[Any] | None,
    ) -> None:
        now = isoformat(self.clock())
        for type_, reason, message in events:
            await self.post_event(key, result, type_, reason, message, now=now)
        if ctx is not None:
            try:
                self.hooks_of(ctx.kind).troupe_status_changed(
                    ctx=ctx, old=old, new=result.get("status") or {}
                )
            except Exception:
                logger.exception("%s: a troupe_status_changed hook failed", key)

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


def _transition(written: Manifest, target: Manifest) -> bool:
    """Does ``target`` change the phase or a condition of the status on record?"""
    return any(written.get(k) != target.get(k) for k in ("phase", "conditions"))


def _uid(body: Manifest) -> str:
    return str(body.get("metadata", {}).get("uid", ""))
