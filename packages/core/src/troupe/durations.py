"""Go-style durations ("4h", "2h30m", "90s", "1.5h"), the format every Troupe spec uses."""

from __future__ import annotations

import functools
import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, Field

#: A JSON-schema pattern for the same grammar, for CRDs (the API server rejects bad values up front).
#: Numbers have at most 9 digits, so no value can overflow before :data:`MAX_DURATION` is checked.
DURATION_PATTERN = r"^([0-9]{1,9}(\.[0-9]{1,9})?(ms|s|m|h|d))+$"
#: The longest duration any spec may hold: added to any time of this century it stays a valid datetime.
MAX_DURATION = timedelta(days=36500)

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(DURATION_PATTERN)


def parse_duration(text: str) -> timedelta:
    """Parse ``text`` into a timedelta; raise ``ValueError`` with a message a user can act on."""
    if not isinstance(text, str):
        raise ValueError(_invalid(text))
    return _parse(text)


@functools.lru_cache(maxsize=1024)
def _parse(text: str) -> timedelta:
    # Cached: the same few spellings are parsed at every reconcile of every object (a timeline, a spec's
    # validation). A refused one raises each time (lru_cache keeps no exceptions).
    value = text.strip()
    if not _WHOLE.match(value):
        raise ValueError(_invalid(text))
    seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(value))
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {text!r} is longer than the maximum of 36500d (100 years)")
    return timedelta(seconds=seconds)


def _invalid(text: object) -> str:
    return (
        f"invalid duration {text!r}: use a number and a unit, such as 90s, 15m, 4h, 2h30m or 1d "
        "(units ms, s, m, h, d; no spaces, no sign)"
    )


def _checked(text: str) -> str:
    parse_duration(text)
    return text


#: A spec field holding a duration: the pattern and length bound go into the CRD (the API server refuses
#: what does not match); a value past :data:`MAX_DURATION` fails the spec's validation, naming the field.
Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=32), AfterValidator(_checked)]


def format_duration(delta: timedelta) -> str:
    """The shortest h/m/s spelling of a whole number of seconds: 9000s → "2h30m"."""
    total = int(delta.total_seconds())
    if total == 0:
        return "0s"
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return "".join(f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n)
