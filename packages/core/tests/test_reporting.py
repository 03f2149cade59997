"""Which status transitions become Events: Warnings and the arrival at Ready, not every step between."""

from __future__ import annotations

from troupe.clock import FrozenClock
from troupe.conditions import Condition
from troupe.context import StatusUpdate
from troupe.engine.reporting import worth_posting
from troupe.engine.status import desired_status, events_for, failed


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
