"""Cron expressions: the five standard fields and the @-macros, evaluated in an IANA time zone.

A small evaluator rather than a dependency: operators need only "the next tick" and "the ticks between two
instants" (observatory's runs, devserver's start/stop schedules), and owning it keeps the semantics
documented in one place. Semantics follow Vixie cron / Kubernetes
CronJob: when both day-of-month and day-of-week are restricted, a day matching either fires; ``*/n``
steps from the field's minimum; names (``jan``, ``mon``) and ``7`` for Sunday are accepted.

Ticks are wall-clock times in the schedule's zone. A wall time skipped by a daylight-saving jump fires at
the instant the clock jumped to; a repeated wall time fires once (its first occurrence). Any instant may
be asked about: past the last representable time (year 9999) there is simply no next tick.

    cron = Cron.parse("30 2 * * mon-fri", "Europe/Paris")   # CronError says what to fix
    cron.next_after(now)                                    # an aware UTC datetime, or None
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# (name, minimum, maximum, names)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
#: No tick within this long means none ever comes: a schedule that matches nothing (e.g. "0 0 30 2 *") is
#: refused. Nine years: 29 February skips 2100 (2096 to 2104). A day count, not a year count, so a leap
#: day has no "same day n years later" to miss.
_HORIZON = timedelta(days=9 * 366)
_LAST_DAY = datetime(MAXYEAR, 12, 31)
#: ASCII digits only: str.isdigit() also accepts "²" and "٣", which int() then refuses or misreads.
_NUMBER = re.compile(r"^[0-9]{1,9}$")
#: The instants ticks are computed between: every zone's wall time of them, and the next minute, exist.
_FIRST = datetime(MINYEAR, 1, 2, tzinfo=UTC)
_LAST = datetime(MAXYEAR, 12, 30, tzinfo=UTC)


class CronError(ValueError):
    """An expression that is not a valid schedule; the message says what to fix."""


@dataclass(frozen=True)
class Cron:
    """A parsed schedule: the allowed values of each field, and the zone its wall times are in."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    day_restricted: bool
    weekday_restricted: bool
    zone: ZoneInfo

    @classmethod
    def parse(cls, expression: str, time_zone: str | None = None) -> Cron:
        """Parse a schedule in an IANA zone (UTC when None); raise :class:`CronError` saying what is wrong."""
        zone_name = time_zone or "UTC"
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise CronError(
                f"unknown time zone {zone_name!r}: use an IANA name such as Europe/Paris "
                "(a fixed offset is Etc/GMT-1 for UTC+1: the sign is inverted)"
            ) from exc
        text = expression.strip()
        if text.startswith("@"):
            if text.lower() not in MACROS:
                raise CronError(f"unknown macro {expression!r}: use one of {', '.join(MACROS)}")
            text = MACROS[text.lower()]
        parts = text.split()
        if len(parts) != 5:
            raise CronError(
                f"{expression!r} has {len(parts)} field{'s' if len(parts) != 1 else ''}; a schedule has "
                "five (minute hour day-of-month month day-of-week, e.g. '*/5 * * * *') or is a macro such "
                "as @hourly"
            )
        sets = [
            _parse_field(p, lo, hi, names, f) for p, (f, lo, hi, names) in zip(parts, _FIELDS, strict=True)
        ]
        cron = cls(
            expression=expression,
            minutes=frozenset(sets[0]),
            hours=frozenset(sets[1]),
            days=frozenset(sets[2]),
            months=frozenset(sets[3]),
            weekdays=frozenset(d % 7 for d in sets[4]),
            day_restricted=parts[2] != "*",
            weekday_restricted=parts[4] != "*",
            zone=zone,
        )
        if cron.next_after(datetime(2000, 1, 1, tzinfo=UTC)) is None:
            raise CronError(f"{expression!r} never fires (no such day)")
        return cron

    def _day_matches(self, day: datetime) -> bool:
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return dom or dow
        return dom and dow

    def _wall_ticks(self, start: datetime) -> Iterator[datetime]:
        """Naive wall times matching the schedule, from ``start`` (a naive wall time) on, in order; ends
        when none comes within :data:`_HORIZON` of the last (or of ``start``)."""
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        hours, minutes = sorted(self.hours), sorted(self.minutes)
        end = _horizon(day)
        while day < end:
            if day.month in self.months and self._day_matches(day):
                for hour in hours:
                    if day.date() == start.date() and hour < start.hour:
                        continue  # the start day's earlier hours: skipped without looking at minutes
                    for minute in minutes:
                        moment = day.replace(hour=hour, minute=minute)
                        if moment >= start:
                            yield moment
                end = _horizon(day)
            day += timedelta(days=1)

    def _ticks(self, after: datetime) -> Iterator[datetime]:
        """The ticks strictly after ``after`` (aware), in order, as aware UTC datetimes.

        Wall times map to instants in order, except that the wall times of a daylight-saving gap all map
        to the instant of the jump: one tick for them.
        """
        if after >= _LAST:
            return
        wall = max(after, _FIRST).astimezone(self.zone).replace(
            tzinfo=None, second=0, microsecond=0
        ) + timedelta(minutes=1)
        last = after
        for moment in self._wall_ticks(wall):
            instant = _to_instant(moment, self.zone)
            if instant > last:
                last = instant
                yield instant

    def next_after(self, after: datetime) -> datetime | None:
        """The first tick strictly after ``after`` (aware), as an aware UTC datetime; None if none follows."""
        return next(self._ticks(after), None)

    def ticks_between(self, after: datetime, until: datetime, limit: int) -> tuple[list[datetime], int]:
        """Ticks in ``(after, until]``: the last ``limit`` of them, and how many there were in all.

        The count stops at 10,000 (a week of a per-minute schedule): enough to say "many" in a message.
        """
        ticks: list[datetime] = []
        total = 0
        for moment in self._ticks(after):
            if moment > until or total >= 10_000:
                break
            total += 1
            ticks.append(moment)
            if len(ticks) > limit:
                ticks.pop(0)
        return ticks, total


def _horizon(day: datetime) -> datetime:
    return day + _HORIZON if day <= _LAST_DAY - _HORIZON else _LAST_DAY


def _to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    # A wall time skipped by a DST jump: fire when the clock jumps, the first instant whose wall time
    # is past it (between the two readings of the missing time, a gap of at most a few hours).
    moment = min(instant, wall.replace(tzinfo=zone, fold=1).astimezone(UTC))
    while moment.astimezone(zone).replace(tzinfo=None) < wall:
        moment += timedelta(minutes=1)
    return moment


def _parse_value(text: str, lo: int, hi: int, names: dict[str, int], field: str) -> int:
    value = names.get(text.lower())
    if value is None:
        if not _NUMBER.match(text):
            raise CronError(f"{field}: {text!r} is not a number{' or a name' if names else ''}")
        value = int(text)
    if not lo <= value <= hi:
        raise CronError(f"{field}: {value} is out of range {lo}-{hi}")
    return value


def _parse_field(text: str, lo: int, hi: int, names: dict[str, int], field: str) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not _NUMBER.match(step_text) or int(step_text) == 0:
                raise CronError(f"{field}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            first, last = lo, hi
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = _parse_value(a, lo, hi, names, field), _parse_value(b, lo, hi, names, field)
            if first > last:
                raise CronError(f"{field}: range {base} goes backwards")
        else:
            first = _parse_value(base, lo, hi, names, field)
            last = hi if step_text else first
        values.update(range(first, last + 1, step))
    return values
