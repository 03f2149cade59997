"""When a workshop starts, warns and ends: derived from spec and status only, so restarts lose nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from troupe import MAX_DURATION, parse_duration, parse_time
from troupe_workshop.models import WorkshopSpec

#: The ends of the calendar as aware datetimes: a sum past them is held there instead of overflowing.
_LAST = datetime.max.replace(tzinfo=UTC)
_FIRST = datetime.min.replace(tzinfo=UTC)


def shift(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta``, held at the end of the calendar rather than raising OverflowError.

    The schema keeps spec times and durations far from it; a status field written by hand is not checked
    by anything, and must not turn every reconcile into a traceback.
    """
    try:
        return moment + delta
    except OverflowError:
        return _LAST if delta > timedelta(0) else _FIRST


def status_time(value: Any) -> datetime | None:
    """A time the operator wrote into the status, or None when it is missing or not a time."""
    try:
        return parse_time(value) if isinstance(value, str) else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Timeline:
    """The instants of one workshop; ``start`` is None until it is known (first Ready, or spec.startTime)."""

    start: datetime | None
    duration: timedelta
    warning: timedelta

    @property
    def expires(self) -> datetime | None:
        return shift(self.start, self.duration) if self.start else None

    @property
    def warn_at(self) -> datetime | None:
        return shift(self.expires, -self.warning) if self.expires else None

    def started(self, now: datetime) -> bool:
        return self.start is not None and now >= self.start

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and now >= self.expires

    def expiring(self, now: datetime) -> bool:
        return self.warn_at is not None and now >= self.warn_at and not self.expired(now)

    def next_event(self, now: datetime) -> float | None:
        """Seconds until the next instant that changes the phase or a condition, if any is ahead."""
        ahead = [t for t in (self.start, self.warn_at, self.expires) if t is not None and t > now]
        return max((min(ahead) - now).total_seconds(), 0.5) if ahead else None


def timeline(spec: WorkshopSpec, status: dict[str, Any]) -> Timeline:
    start = spec.start_time or status_time(status.get("startedAt"))
    return Timeline(start, parse_duration(spec.duration), parse_duration(spec.expiry_warning))


def terminating(spec: WorkshopSpec, status: dict[str, Any], now: datetime, deleting: bool) -> bool:
    """Teardown has begun: deleted by hand, expired, or already under way (it never turns back)."""
    return deleting or status.get("phase") == "Terminating" or timeline(spec, status).expired(now)


def window_errors(spec: WorkshopSpec, body: dict[str, Any], provisioned: bool) -> list[str]:
    """What makes a fixed window useless from the Workshop's creation on, each saying what to fix.

    Checked only before anything was provisioned: a window that ended before the Workshop existed would
    create every child only to tear it down; one starting more than 100 years later would hold them for
    a century. (Once running, an edit that moves the end into the past simply ends the workshop.)
    """
    created = status_time(body["metadata"].get("creationTimestamp"))
    if spec.start_time is None or created is None or provisioned:
        return []
    start = spec.start_time.astimezone(UTC)
    end = shift(start, parse_duration(spec.duration))
    if end <= created:
        return [
            f"spec.startTime {start.isoformat()} + spec.duration {spec.duration} ended at {end.isoformat()}, "
            f"before the Workshop was created ({created.isoformat()}): set a later spec.startTime, a longer "
            "spec.duration, or no spec.startTime to start when ready"
        ]
    if start - created > MAX_DURATION:
        return [
            f"spec.startTime {start.isoformat()} is more than 36500d (100 years) after the Workshop was "
            f"created ({created.isoformat()}): set a nearer spec.startTime"
        ]
    return []
