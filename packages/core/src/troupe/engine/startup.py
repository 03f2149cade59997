"""The start of a ``troupe run``: how long each step took, and the cyclic garbage collector held while
the initial listings fill the caches.

Milestones: one line per step at DEBUG, a summary at INFO when the first reconcile can run (every
listing it waits for is in). Times are seconds since the process started (the kernel's record of it, so
the interpreter's own start and the imports count), else since this module was imported.

The collector: a listing parses thousands of bodies, each a tree of dicts and lists the collector
tracks, and a full collection walks every tracked object alive: the imported modules, the plugins'
models, the caches filled so far. During a restart with 1,000 Workshops (7,000 objects) it took about a
third of the CPU of the listings. Bodies are trees, freed by reference counting; nothing made while
listing needs the cycle collector for a few seconds. So what start-up made is frozen (never walked
again), collections wait until the listings are in, and then the caches are frozen too: a collection
afterwards walks only what changed since.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time

from troupe.engine.cache import share_some

logger = logging.getLogger("troupe.startup")


def _process_age() -> float | None:
    """Seconds since this process started, from /proc (Linux); None elsewhere."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            started_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
            up = float(uptime.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return up - started_ticks / os.sysconf("SC_CLK_TCK")


_AGE = _process_age()
_ORIGIN = time.monotonic() - (_AGE or 0.0)


class Startup:
    """Milestones of one start: ``mark(step)`` as each is reached; ``done()`` logs the summary once."""

    def __init__(self, origin: float = _ORIGIN) -> None:
        self.origin = origin
        self.marks: list[tuple[str, float]] = []
        self.finished = False

    def mark(self, step: str) -> None:
        if self.finished:
            return
        at = time.monotonic() - self.origin
        self.marks.append((step, at))
        logger.debug("start-up: %s at %.3f s (CPU %.2f s)", step, at, time.process_time())

    def done(self, step: str) -> None:
        """The last milestone: the summary line names each step with its time since the process began."""
        if self.finished:
            return
        self.mark(step)
        self.finished = True
        steps = ", ".join(f"{name} {at:.2f}" for name, at in self.marks)
        logger.info("Started in %.2f s (CPU %.2f s): %s", self.marks[-1][1], time.process_time(), steps)


#: The process's start-up (one per process: ``troupe run`` runs once).
STARTUP = Startup()


#: The collector's thresholds: a young pass every 20,000 allocations (not 700), a middle one every 20.
THRESHOLDS = (20_000, 20, 10)

#: Collections resume after this long even if a listing never arrives (a kind the operator may not list).
HOLD_AT_MOST = 60.0


class CollectorHold:
    """The cyclic collector held from :meth:`hold` until :meth:`release` (once), or ``HOLD_AT_MOST``."""

    def __init__(self) -> None:
        self._timer: asyncio.TimerHandle | None = None
        self._held = False

    def hold(self) -> None:
        # Its young pass ran every 700 allocations, and each parsed watch event is hundreds of dicts
        # and lists without cycles: about a tenth of decoding and caching an event, in a burst too.
        gc.set_threshold(*THRESHOLDS)
        if not gc.isenabled():  # someone else holds it (a test, an embedding program): not ours to manage
            return
        gc.freeze()
        gc.disable()
        self._held = True
        self._timer = asyncio.get_running_loop().call_later(HOLD_AT_MOST, self.release)

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        if self._timer is not None:
            self._timer.cancel()
        gc.freeze()  # the caches as listed: walked by no collection from now on
        gc.enable()


class LaterSharing:
    """Shares the strings of the bodies the initial listings cached (``cache.sharing_later``) once the
    listings are in, a slice per turn of the loop, beside the reconciles."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="share cached strings")

    async def _run(self) -> None:
        while share_some():  # noqa: ASYNC110 -- a slice per turn: the loop serves others between
            await asyncio.sleep(0)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
