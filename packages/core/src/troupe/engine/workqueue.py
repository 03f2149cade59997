"""A per-key coalescing work queue: one reconcile per object at a time, bursts folded into one rerun."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from contextvars import ContextVar

logger = logging.getLogger(__name__)

Worker = Callable[[Hashable], Awaitable[float | None]]
#: ``observe(key, reason, outcome)``: why a key was queued and what came of it (metrics).
Observer = Callable[[Hashable, str, str], None]
Echo = Callable[[], bool]

#: The running worker's signal (see :func:`stirred`).
_STIRRED: ContextVar[asyncio.Event | None] = ContextVar("stirred", default=None)


def stirred() -> asyncio.Event | None:
    """Inside a worker: an event set whenever its key is enqueued again while it runs (not for an event
    already known to echo its own write); None outside a worker. A run waiting on something slow (the
    answers to its creates) may act on the new state meanwhile; the rerun after it happens as always."""
    return _STIRRED.get()


class WorkQueue:
    """Run ``worker(key)`` for enqueued keys.

    A key enqueued while its run waits for a slot is simply part of that run (the worker reads the
    latest state when it starts); enqueued while its worker runs, it is run once more afterwards (however
    many events came in between). Different keys run concurrently up to ``concurrency``. The first event
    of a quiet key starts at once, unless it asks to wait for the events that follow (``within``: a
    kind's batch window). The worker returns a delay in
    seconds to be run again later (or None); each run replaces the requeue the previous one asked for,
    since it looked at everything anew, so a timer set while the object was busy never adds a run. A
    delay asked for by ``enqueue(key, delay)`` (a plugin's, an action's) is kept apart and not replaced.
    An exception is logged and retried with exponential backoff, so one bad object never stops the others.

    While paused (:meth:`pause`: a replica of higher priority is active), keys are still queued and
    folded, but no run starts until :meth:`resume`; runs already going finish.
    """

    def __init__(
        self,
        worker: Worker,
        *,
        concurrency: int = 16,
        backoff: float = 1.0,
        max_backoff: float = 300.0,
        observe: Observer | None = None,
    ) -> None:
        self._worker = worker
        self._slots = asyncio.Semaphore(concurrency)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._observe = observe
        self._running: dict[Hashable, asyncio.Task[None]] = {}
        self._busy: set[Hashable] = set()  # keys whose worker is running now (not waiting for a slot)
        self._dirty: set[Hashable] = set()
        # events to a busy key, perhaps echoes: (reason, echo, batch window)
        self._maybe: dict[Hashable, list[tuple[str, Echo, float]]] = {}
        self._stirs: dict[Hashable, asyncio.Event] = {}  # the running workers' signals (:func:`stirred`)
        # (key, requeue): the worker's own requeue (True) or a delay asked for from outside (False)
        self._timers: dict[tuple[Hashable, bool], tuple[float, asyncio.TimerHandle]] = {}
        self._failures: dict[Hashable, int] = {}
        self._resumed = asyncio.Event()
        self._resumed.set()

    def enqueue(
        self,
        key: Hashable,
        delay: float = 0.0,
        *,
        reason: str = "event",
        echo: Echo | None = None,
        within: float = 0.0,
    ) -> None:
        """Run ``key`` now, or once more when it runs, or after ``delay`` seconds.

        ``echo``: asked when the run that is busy now is over, True if this event only brought back a write
        of that run (whose response may come after the event): then no rerun is needed for it.
        ``within``: run ``key`` at the latest this many seconds from now (or after the run under way, if
        later) rather than at once, so the events that follow within that time share the run; any run
        starting before takes it in.
        """
        if delay > 0:
            self._later(key, delay, requeue=False, reason="delayed")
            return
        stir = self._stirs.get(key)
        if stir is not None and not within and (echo is None or not echo()):
            stir.set()  # a batched event waits for its window, not into the run under way
        if key in self._busy and echo is not None and key not in self._dirty:
            self._maybe.setdefault(key, []).append((reason, echo, within))
            return
        if within > 0 and key not in self._dirty and (key in self._busy or key not in self._running):
            self._batch(key, within, reason)
            return
        if key in self._busy:
            outcome = "folded" if key in self._dirty else "rerun"
            self._dirty.add(key)
        elif key in self._running:
            outcome = "pending"  # its run has not started: it will see this
        else:
            outcome = "run"
            self._running[key] = asyncio.create_task(self._run(key), name=f"reconcile {key}")
        self.note(key, reason, outcome)

    @property
    def paused(self) -> bool:
        return not self._resumed.is_set()

    def pause(self) -> None:
        """Hold every run that has not started yet (and every one enqueued from now on)."""
        self._resumed.clear()

    def resume(self) -> None:
        """Start the runs held while paused."""
        self._resumed.set()

    def note(self, key: Hashable, reason: str, outcome: str) -> None:
        """Count an enqueue (or an event that needed none, outcome ``ignored``) for the metrics."""
        if self._observe is not None:
            self._observe(key, reason, outcome)

    def _batch(self, key: Hashable, within: float, reason: str) -> None:
        self._later(key, within, requeue=True, reason=reason)
        self.note(key, reason, "batched")

    def _later(self, key: Hashable, delay: float, *, requeue: bool, reason: str = "requeue") -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        pending = self._timers.get((key, requeue))
        if pending is not None:
            if pending[0] <= due:
                return
            pending[1].cancel()
        self._timers[key, requeue] = (due, loop.call_at(due, self._fire, key, requeue, reason))

    def _fire(self, key: Hashable, requeue: bool, reason: str) -> None:
        self._timers.pop((key, requeue), None)
        self.enqueue(key, reason=reason)

    def _cancel(self, key: Hashable, requeue: bool) -> None:
        pending = self._timers.pop((key, requeue), None)
        if pending is not None:
            pending[1].cancel()

    def forget(self, key: Hashable) -> None:
        """Drop pending timers and failure counts of a key whose object is gone."""
        self._cancel(key, True)
        self._cancel(key, False)
        self._failures.pop(key, None)

    async def _run(self, key: Hashable) -> None:
        try:
            while True:
                async with self._slots:
                    await self._resumed.wait()  # inside the slot: no pause can slip in before the run
                    # Events that came while waiting for the slot are seen by this run: no rerun for them.
                    self._dirty.discard(key)
                    self._cancel(key, True)
                    self._busy.add(key)
                    self._stirs[key] = asyncio.Event()
                    token = _STIRRED.set(self._stirs[key])
                    try:
                        delay = await self._attempt(key)
                        # The slot is held for one more turn of the loop: runs that need no I/O (an
                        # object as it should be) would otherwise all go in a single turn, each slot
                        # freed as soon as taken; after a restart 1,000 took 0.8 s, no probe answered.
                        await asyncio.sleep(0)
                    finally:
                        _STIRRED.reset(token)
                        del self._stirs[key]
                        self._busy.discard(key)
                        self._settle(key)
                if delay is not None:
                    self._later(key, delay, requeue=True)
                if key not in self._dirty:
                    return
        finally:
            self._running.pop(key, None)

    def _settle(self, key: Hashable) -> None:
        """After a run: the events it got that were not echoes of its own writes make it run again."""
        for reason, echo, within in self._maybe.pop(key, ()):
            if key in self._dirty:
                self.note(key, reason, "folded")
            elif echo():
                self.note(key, reason, "ignored")
            elif within > 0:
                self._batch(key, within, reason)
            else:
                self._dirty.add(key)
                self.note(key, reason, "rerun")

    async def _attempt(self, key: Hashable) -> float | None:
        try:
            delay: float | None = await self._worker(key)
        except asyncio.CancelledError:
            raise
        except Exception:
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            delay = min(self._backoff * 2 ** (failures - 1), self._max_backoff)
            logger.exception("Reconcile of %s failed (attempt %d); retrying in %.0fs", key, failures, delay)
            return delay
        self._failures.pop(key, None)
        return delay

    async def drain(self) -> None:
        """Wait until nothing runs (tests)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    def close(self) -> None:
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in self._running.values():
            task.cancel()
