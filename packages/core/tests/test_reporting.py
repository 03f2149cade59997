"""The status writer: off the reconcile's path, coalesced, a small merge patch, deletions only on record;
which transitions become Events: Warnings and the arrival at Ready, not every step between."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from troupe.clock import FrozenClock
from troupe.conditions import Condition
from troupe.context import Manifest, StatusUpdate
from troupe.engine import reporting
from troupe.engine.cache import ObjectCache, ObjectKey
from troupe.engine.client import ApiException
from troupe.engine.metrics import OperatorMetrics
from troupe.engine.reporting import StatusWriter, worth_posting
from troupe.engine.status import desired_status, events_for, failed
from troupe.testing import MemoryKube
from troupe_example import greeting

KEY = ObjectKey(greeting.GREETING, "ns", "hi")


class GatedKube(MemoryKube):
    """A status write waits for ``gate``; ``fail`` makes the next ones raise."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: list[ApiException] = []

    async def patch_status(self, *args: Any, **kwargs: Any) -> Manifest:
        await self.gate.wait()
        if self.fail:
            raise self.fail.pop(0)
        return await super().patch_status(*args, **kwargs)


@pytest.fixture
def kube() -> GatedKube:
    kube = GatedKube()
    kube.objects["greetings", "ns", "hi"] = {
        "metadata": {"name": "hi", "namespace": "ns", "uid": "u1", "generation": 1, "resourceVersion": "1"},
        "spec": {"name": "Ada"},
    }
    return kube


def writer(kube: GatedKube, *, background: bool = True, interval: float = 0.0) -> StatusWriter:
    objects = ObjectCache()
    objects.put(KEY, copy.deepcopy(kube.objects["greetings", "ns", "hi"]))
    metrics = {"example": OperatorMetrics("example", CollectorRegistry())}
    return StatusWriter(
        kube=kube,  # type: ignore[arg-type]
        clock=FrozenClock(datetime(2026, 11, 24, 9, 0, tzinfo=UTC)),
        objects=objects,
        metrics=metrics,
        hooks_of=lambda kind: None,  # type: ignore[arg-type,return-value]
        background=background,
        interval=interval,
    )


def running(n: int, phase: str = "Running") -> StatusUpdate:
    return StatusUpdate(phase=phase, fields={"done": n, "tasks": [{"name": "a", "n": n}]})


async def test_a_reconcile_does_not_wait_for_its_status_write_and_reads_what_it_decided(
    kube: GatedKube,
) -> None:
    w = writer(kube)
    kube.gate.clear()  # the API server is slow
    body = w.objects.get(KEY)
    assert await asyncio.wait_for(w.write(KEY, body, running(1)), 1) is True
    await asyncio.sleep(0)
    assert "status" not in kube.objects["greetings", "ns", "hi"], "the write is under way"
    assert w.current(KEY, body)["status"]["done"] == 1, "the next reconcile reads the status decided"
    echo = {**copy.deepcopy(body), "metadata": {**body["metadata"], "resourceVersion": "50"}}
    assert w.current(KEY, echo)["status"]["done"] == 1, "not an older status from the watch"
    for n in (2, 3):  # two more reconciles while the first write is on its way
        assert await w.write(KEY, w.current(KEY, w.objects.get(KEY)), running(n)) is True
    kube.gate.set()
    assert await w.settled(KEY)
    assert kube.writes == ["status hi", "status hi"], "the two later changes share one write"
    assert kube.status_patches[0]["done"] == 1
    assert kube.status_patches[1] == {"done": 3, "tasks": [{"name": "a", "n": 3}]}, "only what changed"
    on_record = kube.objects["greetings", "ns", "hi"]["status"]
    assert on_record == w.current(KEY, w.objects.get(KEY))["status"] == w.objects.get(KEY)["status"]
    assert await w.write(KEY, w.objects.get(KEY), running(3)) is False, "an unchanged status sends nothing"
    await w.settled(KEY)
    assert len(kube.writes) == 2


@pytest.mark.parametrize(
    ("default", "own"), [(30.0, None), (0.0, 30.0)], ids=["the-writer-s", "the-kind-s-own"]
)
async def test_writes_are_spaced_but_a_phase_change_goes_at_once(
    kube: GatedKube, default: float, own: float | None
) -> None:
    w = writer(kube, interval=default)
    key = ObjectKey(dataclasses.replace(greeting.GREETING, status_interval=own), "ns", "hi")
    w.objects.put(key, w.objects.get(KEY))
    await w.write(key, w.objects.get(key), running(1))
    await asyncio.sleep(0.05)
    await w.write(key, w.current(key, w.objects.get(key)), running(2))
    await asyncio.sleep(0.05)
    assert kube.writes == ["status hi"], "a mere progress waits for the interval"
    await w.write(key, w.current(key, w.objects.get(key)), running(3, phase="Succeeded"))
    await asyncio.sleep(0.05)
    assert kube.writes == ["status hi", "status hi"]
    assert kube.objects["greetings", "ns", "hi"]["status"]["phase"] == "Succeeded"
    assert kube.status_patches[1]["done"] == 3


async def test_a_progress_decided_while_a_phase_change_is_written_waits_for_the_interval(
    kube: GatedKube,
) -> None:
    w = writer(kube, interval=30.0)
    kube.gate.clear()
    await w.write(KEY, w.objects.get(KEY), running(1))  # Running: a transition, sent at once
    await asyncio.sleep(0.05)
    await w.write(KEY, w.current(KEY, w.objects.get(KEY)), running(2))  # progress, while it is sent
    kube.gate.set()
    await asyncio.sleep(0.05)
    assert kube.writes == ["status hi"], "the progress waits for the interval"
    assert w.current(KEY, w.objects.get(KEY))["status"]["done"] == 2


async def test_a_failed_write_is_retried_and_its_status_stays_decided(
    kube: GatedKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reporting, "WRITE_BACKOFF", (0.01, 0.01))
    w = writer(kube)
    kube.fail = [ApiException(status=503, reason="Unavailable")]
    await w.write(KEY, w.objects.get(KEY), running(1))
    assert not await w.settled(KEY), "not written yet"
    assert w.current(KEY, w.objects.get(KEY))["status"]["done"] == 1
    await asyncio.sleep(0.1)
    assert kube.objects["greetings", "ns", "hi"]["status"]["done"] == 1
    kube.fail = [ApiException(status=422, reason="Invalid")]
    await w.write(KEY, w.objects.get(KEY), running(2))
    assert not await w.settled(KEY)
    assert w.current(KEY, w.objects.get(KEY))["status"]["done"] == 1, "a refused status is dropped"


async def test_without_background_a_failed_write_raises_and_is_forgotten(kube: GatedKube) -> None:
    w = writer(kube, background=False)
    kube.fail = [ApiException(status=503, reason="Unavailable")]
    with pytest.raises(ApiException):
        await w.write(KEY, w.objects.get(KEY), running(1))
    assert "status" not in w.current(KEY, w.objects.get(KEY))


async def test_nested_keys_removed_are_removed_on_the_server(kube: GatedKube) -> None:
    w = writer(kube)
    actions = {"backup": {"state": "Done"}, "restore": {"state": "Running"}}
    both = StatusUpdate(phase="Ready", fields={"actions": actions})
    await w.write(KEY, w.objects.get(KEY), both)
    await w.settled(KEY)
    one = StatusUpdate(phase="Ready", fields={"actions": {"backup": {"state": "Done"}}})
    await w.write(KEY, w.objects.get(KEY), one)
    await w.settled(KEY)
    assert kube.status_patches[-1] == {"actions": {"restore": None}}
    assert kube.objects["greetings", "ns", "hi"]["status"]["actions"] == {"backup": {"state": "Done"}}
    assert await w.write(KEY, w.objects.get(KEY), one) is False, "read back, it is what was wanted"


def step(clock: FrozenClock, observed: dict, update: StatusUpdate) -> tuple[dict, list[tuple[str, str, str]]]:
    desired = desired_status(observed, update, now=clock(), generation=1)
    return desired, worth_posting(events_for(observed, desired), observed, desired)


def ready(status: str, reason: str, message: str = "") -> StatusUpdate:
    return StatusUpdate(
        phase=reason,
        conditions=[
            Condition(type="Ready", status=status, reason=reason, message=message),  # type: ignore[arg-type]
            Condition(type="Available", status=status, reason=reason, message=message),  # type: ignore[arg-type]
        ],
    )


def test_only_warnings_and_the_arrival_at_ready_are_posted(clock: FrozenClock) -> None:
    status, posted = step(clock, {}, ready("False", "Creating", "waiting for claim w-home to bind"))
    assert posted == []  # the first step is in the status; an Event per step was a write per step
    status, posted = step(clock, status, ready("False", "Starting", "waiting for RStudio to be ready"))
    assert posted == []
    status, posted = step(clock, status, ready("True", "Running", "open until 18:00"))
    assert posted == [("Normal", "Running", "open until 18:00")]  # Ready's own, not Available's too
    status, posted = step(clock, status, failed("ImagePullFailed", "fix spec.image"))
    assert posted == [("Warning", "ImagePullFailed", "fix spec.image")]
    warn = StatusUpdate(conditions=[Condition(type="ExpiringSoon", status="True", reason="Soon")])
    _, posted = step(clock, status, warn)
    assert posted == [("Warning", "Soon", "ExpiringSoon")]
