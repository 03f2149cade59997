from __future__ import annotations

from troupe.clock import FrozenClock, isoformat
from troupe.conditions import Condition, merge_conditions
from troupe.context import StatusUpdate
from troupe.engine.status import desired_status, events_for, failed, status_patch


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
    first = desired_status({}, update, now=clock(), generation=3)
    assert status_patch({}, first) == first
    clock.advance(300)
    again = desired_status(first, update, now=clock(), generation=3)
    assert status_patch(first, again) is None


def test_patch_carries_only_changes_and_removals(clock: FrozenClock) -> None:
    observed = {"phase": "Ready", "url": "http://x", "observedGeneration": 1, "conditions": []}
    desired = {"phase": "Running", "url": None, "observedGeneration": 1, "conditions": []}
    assert status_patch(observed, desired) == {"phase": "Running", "url": None}


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
