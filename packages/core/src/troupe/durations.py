"""Go-style durations ("4h", "2h30m", "90s", "1.5h"), the format every Troupe spec uses."""

from __future__ import annotations

import re
from datetime import timedelta

#: A JSON-schema pattern for the same grammar, for CRDs (the API server rejects bad values up front).
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(DURATION_PATTERN)


def parse_duration(text: str) -> timedelta:
    """Parse ``text`` into a timedelta; raise ``ValueError`` with a message a user can act on."""
    value = text.strip() if isinstance(text, str) else text
    if not isinstance(value, str) or not _WHOLE.match(value):
        raise ValueError(
            f"invalid duration {text!r}: use a number and a unit, such as 90s, 15m, 4h, 2h30m or 1d "
            "(units ms, s, m, h, d; no spaces, no sign)"
        )
    seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(value))
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest h/m/s spelling of a whole number of seconds: 9000s → "2h30m"."""
    total = int(delta.total_seconds())
    if total == 0:
        return "0s"
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return "".join(f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n)
