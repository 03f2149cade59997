from __future__ import annotations

import pytest

from troupe.clock import FrozenClock, isoformat
from troupe.conditions import Condition, merge_conditions
from troupe.context import StatusUpdate
from troupe.engine.status import (
    apply_merge_patch,
    desired_status,
    events_for,
    failed,
    merge_patch,
    updated_status,
)


def ready(status: str, reason: str = "R") -> Condition:
    return Condition(type="Ready", status=status, reason=reason, message="m")  # type: ignore[arg-type]


def test_transition_time_moves_only_when_status_flips(clock: FrozenClock) -> None:
    first = merge_conditions([], [ready("False", "Creating")], now=clock(), generation=1)
    clock.advance(60)
    same = merge_conditions(first, [ready("False", "StillCreating")], now=clock(), generation=2)
    assert same[0]["lastTransitionTime"] == first[0]["lastTransitionTime"]
    assert same[0]["reason"] == "StillCreating" and same[0]["observedGeneration"] == 2
    clock.advance(60)
    flipped = merge_conditions(same, [ready("True")], now=clock(), generation=2)
    assert flipped[0]["lastTransitionTime"] == isoformat(clock())


def test_conditions_not_reported_are_kept(clock: FrozenClock) -> None:
    other = {"type": "Other", "status": "True", "reason": "X", "message": "", "lastTransitionTime": "t"}
    merged = merge_conditions([other], [ready("True")], now=clock(), generation=1)
    assert [c["type"] for c in merged] == ["Ready", "Other"]


def test_unchanged_status_needs_no_patch(clock: FrozenClock) -> None:
    update = StatusUpdate(phase="Ready", conditions=[ready("True")], fields={"url": "http://x"})
    first = updated_status({}, desired_status({}, update, now=clock(), generation=3))
    assert merge_patch({}, first) == first
    clock.advance(300)
    again = updated_status(first, desired_status(first, update, now=clock(), generation=3))
    assert again == first and merge_patch(first, again) is None


def test_a_status_takes_what_the_update_names_and_keeps_the_rest() -> None:
    observed = {"phase": "Ready", "url": "http://x", "theirs": {"a": 1}, "map": {"k": 1, "gone": 2}}
    desired = {"phase": "Running", "url": None, "map": {"k": 1, "new": None}}
    assert updated_status(observed, desired) == {"phase": "Running", "theirs": {"a": 1}, "map": {"k": 1}}


def test_a_null_deep_in_the_update_is_no_change() -> None:
    """The server stores no null: a status holding one (in a map, in a list's map) never looked written."""
    observed = {"ssh": {"host": "h"}, "tasks": [{"name": "a"}]}
    desired = {"ssh": {"host": "h", "port": None}, "tasks": [{"name": "a", "exitCode": None}]}
    assert updated_status(observed, desired) == observed


OLD = {
    "phase": "Running",
    "url": "http://x",
    "actions": {"backup": {"state": "Running", "started": "t1"}, "restore": {"state": "Done"}},
    "tasks": [{"name": "a", "phase": "Running"}, {"name": "b", "phase": "Pending"}],
    "conditions": [{"type": "Ready", "status": "True"}],
}


@pytest.mark.parametrize(
    ("new", "patch"),
    [
        (OLD, None),
        ({**OLD, "phase": "Succeeded"}, {"phase": "Succeeded"}),
        ({k: v for k, v in OLD.items() if k != "url"}, {"url": None}),
        (
            {**OLD, "actions": {"backup": {"state": "Done", "started": "t1"}}},
            {"actions": {"backup": {"state": "Done"}, "restore": None}},
        ),
        (
            {**OLD, "tasks": [{"name": "a", "phase": "Succeeded"}, {"name": "b", "phase": "Pending"}]},
            {"tasks": [{"name": "a", "phase": "Succeeded"}, {"name": "b", "phase": "Pending"}]},
        ),
        ({**OLD, "actions": "replaced by a string"}, {"actions": "replaced by a string"}),
        ({**OLD, "url": {"nested": {"deep": 1}}}, {"url": {"nested": {"deep": 1}}}),
        ({}, {k: None for k in OLD}),
    ],
)
def test_merge_patch_is_what_differs_and_reads_back_as_the_new_status(new: dict, patch: dict | None) -> None:
    assert merge_patch(OLD, new) == patch
    assert apply_merge_patch(OLD, patch or {}) == new, "a merge patch's result is the status wanted"


def test_failed_is_phase_and_condition(clock: FrozenClock) -> None:
    status = desired_status({}, failed("InvalidSpec", "spec.x: bad"), now=clock(), generation=1)
    assert status["phase"] == "Failed"
    assert status["conditions"][0]["reason"] == "InvalidSpec"
    assert events_for({}, status) == [("Warning", "InvalidSpec", "spec.x: bad")]


def test_events_only_on_transitions(clock: FrozenClock) -> None:
    update = StatusUpdate(phase="Ready", conditions=[ready("True", "Up")])
    first = desired_status({}, update, now=clock(), generation=1)
    assert events_for({}, first) == [("Normal", "Up", "m")]
    assert events_for(first, desired_status(first, update, now=clock(), generation=1)) == []
    warn = StatusUpdate(conditions=[Condition(type="ExpiringSoon", status="True", reason="Soon")])
    second = desired_status(first, warn, now=clock(), generation=1)
    assert events_for(first, second) == [("Warning", "Soon", "ExpiringSoon")]
