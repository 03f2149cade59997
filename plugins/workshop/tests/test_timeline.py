"""The timeline at its bounds: huge values never overflow, and a useless window is refused up front."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from troupe import ChildKey, Children
from troupe_workshop.builders import build
from troupe_workshop.config import Settings
from troupe_workshop.metrics import WorkshopMetrics
from troupe_workshop.models import WorkshopSpec
from troupe_workshop.status import workshop_status
from troupe_workshop.timeline import shift, status_time, timeline, window_errors

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SETTINGS = Settings(password_key=b"k" * 32)


def body(status: dict[str, Any] | None = None, created: datetime = T0) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "intro",
            "namespace": "class",
            "uid": "u",
            "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "status": status or {},
    }


def test_shift_holds_at_the_ends_of_the_calendar() -> None:
    assert shift(T0, timedelta(days=1)) == T0 + timedelta(days=1)
    assert shift(datetime.max.replace(tzinfo=UTC) - timedelta(days=1), timedelta(days=36500)).year == 9999
    assert shift(datetime.min.replace(tzinfo=UTC) + timedelta(days=1), -timedelta(days=36500)).year == 1


@pytest.mark.parametrize(
    "spec",
    [
        {"duration": "36500d", "expiryWarning": "36500d", "startTime": "2199-12-31T23:59:59Z"},
        {"duration": "36500d", "expiryWarning": "36500d", "startTime": "2000-01-01T00:00:00Z"},
        {"duration": "1m", "expiryWarning": "36500d"},
        {"duration": "999999999s", "expiryWarning": "0s"},
    ],
)
@pytest.mark.parametrize(
    "status",
    [
        {},
        {"phase": "Running", "startedAt": "9999-12-31T23:59:59Z", "restartedAt": "0001-01-01T00:00:00Z"},
        {"phase": "Running", "startedAt": "0001-01-01T00:00:00Z"},
        {"phase": "Running", "startedAt": "not a time", "restartedAt": "soon"},
        {"phase": "Terminating", "startedAt": "9999-12-31T23:59:59Z"},
    ],
)
def test_huge_values_never_overflow(spec: dict[str, Any], status: dict[str, Any]) -> None:
    """The largest values the schema admits, and status fields written by hand, at any instant."""
    parsed = WorkshopSpec.model_validate(spec)
    for now in (T0, datetime(2199, 12, 31, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)):
        tl = timeline(parsed, status)
        tl.expired(now), tl.expiring(now), tl.next_event(now)
        kids = build(parsed, body(status), Children(), SETTINGS, now)
        observed = Children({ChildKey.of(k): k for k in kids})
        update = workshop_status(parsed, body(status), observed, SETTINGS, now)
        assert update.requeue_after is None or update.requeue_after >= 0.5
        assert update.fields["expiresAt"] is None or update.fields["expiresAt"] <= "9999-12-31T23:59:59Z"


def test_status_times_that_are_not_times_are_none() -> None:
    assert status_time("2026-11-24T09:00:00Z") == T0
    assert status_time("garbage") is None and status_time(None) is None and status_time(5) is None


def test_metrics_observe_huge_times() -> None:
    class Histogram:
        def __init__(self) -> None:
            self.seen: list[float] = []

        def observe(self, value: float) -> None:
            self.seen.append(value)

    metrics = WorkshopMetrics.__new__(WorkshopMetrics)
    metrics.time_to_ready = Histogram()  # type: ignore[assignment]
    old_body = body(created=datetime(2000, 1, 1, tzinfo=UTC))
    metrics.observe(old_body, {}, {"phase": "Running"}, datetime(9999, 12, 31, tzinfo=UTC))
    assert metrics.time_to_ready.seen[0] > 0  # type: ignore[attr-defined]


def test_a_window_that_ended_before_creation_is_refused_before_anything() -> None:
    spec = WorkshopSpec.model_validate({"startTime": "2026-11-24T07:00:00Z", "duration": "2h"})
    (error,) = window_errors(spec, body(), provisioned=False)
    assert (
        "spec.startTime" in error and "spec.duration" in error and "before the Workshop was created" in error
    )
    # once provisioned, an edit moving the end into the past just ends the workshop (teardown, not Failed)
    assert window_errors(spec, body(), provisioned=True) == []
    ongoing = WorkshopSpec.model_validate({"startTime": "2026-11-24T07:00:00Z", "duration": "2h1s"})
    assert window_errors(ongoing, body(), provisioned=False) == []
    assert window_errors(WorkshopSpec(), body(), provisioned=False) == []


def test_a_start_more_than_a_century_after_creation_is_refused() -> None:
    far = WorkshopSpec.model_validate({"startTime": "2199-01-01T00:00:00Z"})
    (error,) = window_errors(far, body(), provisioned=False)
    assert "more than 36500d" in error and "spec.startTime" in error
    near = WorkshopSpec.model_validate({"startTime": "2126-10-01T00:00:00Z"})
    assert window_errors(near, body(), provisioned=False) == []


def test_a_workshop_deleted_before_it_was_provisioned_creates_no_claim() -> None:
    spec = WorkshopSpec()
    assert build(spec, body(), Children(), SETTINGS, T0, deleting=True) == []
    claim = next(
        k for k in build(spec, body(), Children(), SETTINGS, T0) if k["kind"] == "PersistentVolumeClaim"
    )
    kept = build(spec, body(), Children({ChildKey.of(claim): claim}), SETTINGS, T0, deleting=True)
    assert [k["metadata"]["name"] for k in kept] == ["intro-home"]
