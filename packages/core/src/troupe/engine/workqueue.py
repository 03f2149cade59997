"""A per-key coalescing work queue: one reconcile per object at a time, bursts folded into one rerun."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

logger = logging.getLogger(__name__)

Worker = Callable[[Hashable], Awaitable[float | None]]


class WorkQueue:
    """Run ``worker(key)`` for enqueued keys.

    A key enqueued while its worker runs is run once more afterwards (however many events came in
    between); different keys run concurrently up to ``concurrency``. The worker returns a delay in seconds
    to be run again later (or None). An exception is logged and retried with exponential backoff, so one
    bad object never stops the others.
    """

    def __init__(
        self, worker: Worker, *, concurrency: int = 16, backoff: float = 1.0, max_backoff: float = 300.0
    ) -> None:
        self._worker = worker
        self._slots = asyncio.Semaphore(concurrency)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._running: dict[Hashable, asyncio.Task[None]] = {}
        self._dirty: set[Hashable] = set()
        self._timers: dict[Hashable, tuple[float, asyncio.TimerHandle]] = {}
        self._failures: dict[Hashable, int] = {}

    def enqueue(self, key: Hashable, delay: float = 0.0) -> None:
        if delay > 0:
            self._enqueue_later(key, delay)
            return
        if key in self._running:
            self._dirty.add(key)
        else:
            self._running[key] = asyncio.create_task(self._run(key), name=f"reconcile {key}")

    def _enqueue_later(self, key: Hashable, delay: float) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        pending = self._timers.get(key)
        if pending is not None:
            if pending[0] <= due:
                return
            pending[1].cancel()
        self._timers[key] = (due, loop.call_at(due, self._fire, key))

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.enqueue(key)

    def forget(self, key: Hashable) -> None:
        """Drop pending timers and failure counts of a key whose object is gone."""
        pending = self._timers.pop(key, None)
        if pending is not None:
            pending[1].cancel()
        self._failures.pop(key, None)

    async def _run(self, key: Hashable) -> None:
        try:
            while True:
                self._dirty.discard(key)
                async with self._slots:
                    delay = await self._attempt(key)
                if delay is not None:
                    self._enqueue_later(key, delay)
                if key not in self._dirty:
                    return
        finally:
            self._running.pop(key, None)

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
