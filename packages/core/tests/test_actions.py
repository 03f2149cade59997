"""Long-running actions: run once per inputs, outside the reconcile, recorded, resumed, cancelled."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from troupe.clock import FrozenClock
from troupe.engine.actions import ActionRunner, digest
from troupe.kinds import Action, KindSpec
from troupe.testing import MemoryKube

RUNS: list[dict[str, Any]] = []


async def survey(inputs: dict[str, Any], handle: Any) -> dict[str, Any]:
    RUNS.append(inputs)
    await asyncio.sleep(inputs.get("seconds", 0))
    if inputs.get("fail"):
        raise RuntimeError("the registry said no")
    return {"found": inputs.get("what")}


class Spec(BaseModel):
    pass


KIND = KindSpec(
    operator="t",
    group="t.example",
    version="v1",
    kind="Site",
    plural="sites",
    spec_model=Spec,
    actions=(Action("survey", survey, timeout=0.5),),
)
TARGET = (KIND, "ns", "s")


def runner(kube: MemoryKube, clock: FrozenClock, done: list[object]) -> ActionRunner:
    RUNS.clear()
    return ActionRunner(kube, clock, done=done.append)  # type: ignore[arg-type]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.01)


async def test_an_action_runs_once_and_records_its_outcome(kube: MemoryKube, clock: FrozenClock) -> None:
    done: list[object] = []
    actions = runner(kube, clock, done)
    started = actions.plan("key", TARGET, {"survey": {"what": "tag"}}, {})
    assert started["survey"]["phase"] == "Running" and started["survey"]["digest"] == digest({"what": "tag"})
    assert actions.plan("key", TARGET, {"survey": {"what": "tag"}}, {"actions": started}) == {}  # in flight
    await settle()
    assert done == ["key"] and RUNS == [{"what": "tag"}]
    assert kube.writes == ["PATCH /apis/t.example/v1/namespaces/ns/sites/s/status"]
    record = kube.bodies[0]["status"]["actions"]["survey"]
    assert record["phase"] == "Succeeded" and record["result"] == {"found": "tag"} and record["finishedAt"]
    assert actions.plan("key", TARGET, {"survey": {"what": "tag"}}, {"actions": {"survey": record}}) == {}
    await settle()
    assert RUNS == [{"what": "tag"}]  # done for these inputs: not redone


async def test_one_in_flight_at_a_restart_runs_again(kube: MemoryKube, clock: FrozenClock) -> None:
    actions = runner(kube, clock, [])
    running = {"digest": digest({"what": "tag"}), "phase": "Running"}
    assert actions.plan("key", TARGET, {"survey": {"what": "tag"}}, {"actions": {"survey": running}})
    await settle()
    assert RUNS == [{"what": "tag"}]


async def test_new_inputs_cancel_the_running_one(kube: MemoryKube, clock: FrozenClock) -> None:
    actions = runner(kube, clock, [])
    actions.plan("key", TARGET, {"survey": {"what": "a", "seconds": 0.3}}, {})
    await settle()
    actions.plan("key", TARGET, {"survey": {"what": "b"}}, {})
    await asyncio.sleep(0.4)
    results = [b["status"]["actions"]["survey"]["result"] for b in kube.bodies]
    assert results == [{"found": "b"}]  # the first never finished, so never recorded


async def test_failures_and_timeouts_are_recorded_not_raised(kube: MemoryKube, clock: FrozenClock) -> None:
    actions = runner(kube, clock, [])
    actions.plan("a", TARGET, {"survey": {"fail": True}}, {})
    actions.plan("b", (KIND, "ns", "t"), {"survey": {"seconds": 5}}, {})
    await asyncio.sleep(0.7)
    messages = sorted(b["status"]["actions"]["survey"]["message"] for b in kube.bodies)
    assert messages == ["the registry said no", "timed out after 0.5s"]


async def test_deletion_cancels(kube: MemoryKube, clock: FrozenClock) -> None:
    actions = runner(kube, clock, [])
    actions.plan("key", TARGET, {"survey": {"seconds": 0.2}}, {})
    actions.cancel("key")
    await asyncio.sleep(0.3)
    assert kube.writes == []


async def test_an_undeclared_action_is_an_error(kube: MemoryKube, clock: FrozenClock) -> None:
    actions = runner(kube, clock, [])
    with pytest.raises(ValueError, match="undeclared action 'deploy'"):
        actions.plan("key", TARGET, {"deploy": {}}, {})


async def test_a_stale_running_record_after_the_end_does_not_rerun(
    kube: MemoryKube, clock: FrozenClock
) -> None:
    """The watch shows "Running" for a moment after the step ended: no second run from that (the
    finished record is handed back to be written, which is what a lagging watch already holds)."""
    actions = runner(kube, clock, [])
    started = actions.plan("key", TARGET, {"survey": {"what": "tag"}}, {})
    await settle()
    again = actions.plan("key", TARGET, {"survey": {"what": "tag"}}, {"actions": started})
    assert again["survey"]["phase"] == "Succeeded"
    await settle()
    assert RUNS == [{"what": "tag"}]


async def test_a_record_says_which_inputs_it_is_of(kube: MemoryKube, clock: FrozenClock) -> None:
    """ActionRecord.matches: a status hook tells a failed run of its current inputs from an older one."""
    from troupe import ActionRecord

    record = ActionRecord(digest=digest({"what": "moss", "attempt": 1}), phase="Failed", message="no")
    assert record.matches({"attempt": 1, "what": "moss"})  # key order does not matter
    assert not record.matches({"what": "moss", "attempt": 2})
    assert not record.matches({"what": "fern", "attempt": 1})


async def test_a_step_that_ends_before_its_running_record_is_written_is_recorded_again(
    kube: MemoryKube, clock: FrozenClock
) -> None:
    """The reconcile that starts a step writes "Running" after ``plan``; a step quicker than that write
    (a DNS failure) had already recorded its end, and the "Running" overwrote it. The next plan sees
    "Running" for a digest this process finished, and hands the finished record back to be written."""
    actions = runner(kube, clock, [])
    started = actions.plan("key", TARGET, {"survey": {"what": "x", "fail": True}}, {})
    await settle()  # the step failed and wrote its record...
    finished = kube.bodies[-1]["status"]["actions"]["survey"]
    assert finished["phase"] == "Failed"
    # ...and then the reconcile's write of "Running" landed on top of it
    again = actions.plan("key", TARGET, {"survey": {"what": "x", "fail": True}}, {"actions": started})
    assert again == {"survey": finished}
    assert len(RUNS) == 1  # not run again
    assert actions.plan("key", TARGET, {"survey": {"what": "x", "fail": True}}, {"actions": again}) == {}
