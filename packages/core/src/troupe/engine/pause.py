"""kopf's peering pause, followed by the work queue.

When a replica of higher priority is active, kopf's peering pauses this one: kopf stops its own watch
streams, so no primary object starts a reconcile. The core's informers do not stop, so the work queue
is paused instead: events still fill the caches, no reconcile runs (nothing is written) until kopf
resumes. kopf keeps its pause state (``operator_paused``, a ToggleSet: one toggle per peering, on while
a rival of higher priority is seen) private; we take it from the call kopf makes to its orchestrator.
This reaches into private kopf modules; tests/test_pause.py fails if kopf moves them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from troupe.engine.workqueue import WorkQueue

logger = logging.getLogger(__name__)


def install_pause_probe(found: Callable[[Any], None]) -> None:
    """Wrap kopf's orchestrator so ``found`` gets the operator's pause ToggleSet when kopf starts."""
    from kopf._core.reactor import orchestration

    original = getattr(orchestration, "_troupe_original", orchestration.orchestrator)

    async def orchestrator(**kwargs: Any) -> None:
        found(kwargs["operator_paused"])
        await original(**kwargs)

    orchestration._troupe_original = original  # type: ignore[attr-defined]
    orchestration.orchestrator = orchestrator


async def follow_pause(paused: Any, queue: WorkQueue, peering: str | None) -> None:
    """Pause ``queue`` while kopf is paused, until cancelled.

    ``peering``: the peering name when peering is mandatory. kopf then starts each peering paused until
    it has seen who else is there; before its toggles exist the set reads "not paused", so the queue,
    paused from the start, waits for them to exist before it follows the set.
    """

    def decided() -> bool:
        return peering is None or any(str(t.name).startswith(f"{peering}@") for t in paused)

    condition: asyncio.Condition = paused._condition  # every toggle of the set notifies it on a change
    async with condition:
        while True:
            await condition.wait_for(lambda: decided() and paused.is_on() != queue.paused)
            if paused.is_on():
                logger.info("Paused by peering (another replica is active): no reconcile runs")
                queue.pause()
            else:
                logger.info("Resumed by peering: reconciles run")
                queue.resume()
