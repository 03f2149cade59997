"""Time in one place: an injectable clock, and RFC 3339 formatting as Kubernetes writes it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(moment: datetime) -> str:
    """RFC 3339 in UTC with second precision and a ``Z``, the format of metav1.Time."""
    # datetime.isoformat is C; strftime parses its format on every call (each condition, each event)
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def parse_time(value: str | None) -> datetime | None:
    """Parse a metav1.Time string; ``None`` or an empty string gives ``None``."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


class FrozenClock:
    """A clock for tests: reads the same instant until moved with ``advance``."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
