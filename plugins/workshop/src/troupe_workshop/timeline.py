"""When a workshop starts, warns and ends: derived from spec and status only, so restarts lose nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from troupe import parse_duration, parse_time
from troupe_workshop.models import WorkshopSpec


@dataclass(frozen=True)
class Timeline:
    """The instants of one workshop; ``start`` is None until it is known (first Ready, or spec.startTime)."""

    start: datetime | None
    duration: timedelta
    warning: timedelta

    @property
    def expires(self) -> datetime | None:
        return self.start + self.duration if self.start else None

    @property
    def warn_at(self) -> datetime | None:
        return self.expires - self.warning if self.expires else None

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
    start = spec.start_time or parse_time(status.get("startedAt"))
    return Timeline(start, parse_duration(spec.duration), parse_duration(spec.expiry_warning))


def terminating(spec: WorkshopSpec, status: dict[str, Any], now: datetime, deleting: bool) -> bool:
    """Teardown has begun: deleted by hand, expired, or already under way (it never turns back)."""
    return deleting or status.get("phase") == "Terminating" or timeline(spec, status).expired(now)
