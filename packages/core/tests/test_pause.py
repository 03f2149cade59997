from __future__ import annotations

import asyncio
import inspect
from collections.abc import Hashable
from typing import Any

import pytest
from kopf._cogs.aiokits import aiotoggles
from kopf._core.reactor import orchestration, running

from troupe.engine.pause import follow_pause, install_pause_probe
from troupe.engine.workqueue import WorkQueue


def test_kopf_still_has_what_the_pause_probe_wraps() -> None:
    # If kopf moves these, a paused replica would go on reconciling: fail loudly here.
    assert "operator_paused" in inspect.signature(orchestration.orchestrator).parameters
    assert "orchestrator" in running.spawn_tasks.__code__.co_names  # called through the module attribute
    assert isinstance(aiotoggles.ToggleSet(any)._condition, asyncio.Condition)


async def test_the_probe_hands_over_kopfs_pause_set(monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[Any] = []

    async def fake(**kwargs: Any) -> None:
        called.append(kwargs)

    monkeypatch.setattr(orchestration, "orchestrator", fake)
    monkeypatch.delattr(orchestration, "_troupe_original", raising=False)
    found: list[Any] = []
    install_pause_probe(found.append)
    paused = aiotoggles.ToggleSet(any)
    await orchestration.orchestrator(operator_paused=paused, settings=None)
    assert found == [paused] and called == [{"operator_paused": paused, "settings": None}]


async def test_the_queue_holds_runs_while_kopf_is_paused() -> None:
    runs: list[Hashable] = []

    async def worker(key: Hashable) -> None:
        runs.append(key)

    queue = WorkQueue(worker)
    queue.pause()  # as at start-up with mandatory peering
    paused = aiotoggles.ToggleSet(any)
    follower = asyncio.create_task(follow_pause(paused, queue, "troupe-workshop"))
    try:
        queue.enqueue("a")
        await asyncio.sleep(0.01)
        assert runs == [] and queue.paused  # kopf's set has no peering toggle yet: not decided
        toggle = await paused.make_toggle(True, name="troupe-workshop@None")  # pre-activated: paused
        await asyncio.sleep(0.01)
        assert runs == [] and queue.paused
        await toggle.turn_to(False)  # no rival of higher priority
        await asyncio.sleep(0.01)
        assert runs == ["a"] and not queue.paused
        await toggle.turn_to(True)  # a rival of higher priority appeared
        await asyncio.sleep(0.01)
        queue.enqueue("b")
        queue.enqueue("a")
        await asyncio.sleep(0.01)
        assert runs == ["a"] and queue.paused
        await toggle.turn_to(False)
        await queue.drain()
        assert sorted(runs[1:]) == ["a", "b"]
    finally:
        follower.cancel()
        queue.close()


async def test_standalone_follows_the_set_from_the_start() -> None:
    queue = WorkQueue(lambda key: asyncio.sleep(0))
    paused = aiotoggles.ToggleSet(any)
    follower = asyncio.create_task(follow_pause(paused, queue, None))
    try:
        toggle = await paused.make_toggle(True, name="anything")
        await asyncio.sleep(0.01)
        assert queue.paused
        await toggle.turn_to(False)
        await asyncio.sleep(0.01)
        assert not queue.paused
    finally:
        follower.cancel()
        queue.close()
