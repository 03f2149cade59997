from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterator

import pytest

from troupe.engine import cache, startup
from troupe.engine.startup import CollectorHold, LaterSharing, Startup


@pytest.fixture
def collector_on() -> Iterator[None]:
    assert gc.isenabled()
    thresholds = gc.get_threshold()
    yield
    gc.enable()
    gc.set_threshold(*thresholds)


def test_the_summary_names_each_step_with_its_time_since_the_start(caplog: pytest.LogCaptureFixture) -> None:
    clock = Startup(origin=0.0)
    clock.mark("imports")
    with caplog.at_level(logging.INFO, logger="troupe.startup"):
        clock.done("first reconcile")
        clock.done("first reconcile")  # once
        clock.mark("later")  # after the summary: not a start-up step
    [summary] = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert summary.startswith("Started in ")
    assert "imports " in summary and summary.count("first reconcile") == 1
    assert [step for step, _ in clock.marks] == ["imports", "first reconcile"]
    assert clock.marks[0][1] <= clock.marks[1][1]


def test_the_process_age_comes_from_the_kernel() -> None:
    age = startup._process_age()
    assert age is not None and 0 < age < 3600  # this test process started a moment ago, not at boot


async def test_collections_wait_for_the_listings_then_resume(collector_on: None) -> None:
    hold = CollectorHold()
    hold.hold()
    assert not gc.isenabled() and gc.get_threshold() == startup.THRESHOLDS
    hold.release()
    assert gc.isenabled() and gc.get_threshold() == startup.THRESHOLDS
    hold.release()  # once: a second release changes nothing
    assert gc.isenabled()


async def test_collections_resume_anyway_when_a_listing_never_comes(
    collector_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(startup, "HOLD_AT_MOST", 0.05)
    CollectorHold().hold()
    assert not gc.isenabled()
    await asyncio.sleep(0.1)
    assert gc.isenabled()


async def test_a_collector_held_by_someone_else_is_left_to_them(collector_on: None) -> None:
    gc.disable()
    hold = CollectorHold()
    hold.hold()
    hold.release()
    assert not gc.isenabled()  # not ours: not turned on behind their back


async def test_the_bodies_left_unshared_are_shared_beside_the_reconciles() -> None:
    with cache.sharing_later():
        for i in range(450):
            cache.trimmed({"metadata": {"name": f"w{i}"}})
    sharing = LaterSharing()
    sharing.start()
    await asyncio.sleep(0)
    assert cache._unshared  # a slice per turn of the loop, not all at once
    for _ in range(5):
        await asyncio.sleep(0)
    assert not cache._unshared
    sharing.stop()
