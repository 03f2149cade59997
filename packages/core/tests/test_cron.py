"""Cron expressions: fields, macros, time zones, daylight saving, and input that must be refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from troupe import Cron, CronError


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("* * * * *", "2030-01-01T12:00:30", "2030-01-01T12:01:00"),
        ("*/15 * * * *", "2030-01-01T12:01:00", "2030-01-01T12:15:00"),
        ("0 3 * * *", "2030-01-01T04:00:00", "2030-01-02T03:00:00"),
        ("@hourly", "2030-01-01T12:00:00", "2030-01-01T13:00:00"),
        ("@weekly", "2030-01-01T00:00:00", "2030-01-06T00:00:00"),  # a Sunday
        ("0 0 1 jan *", "2030-06-01T00:00:00", "2031-01-01T00:00:00"),
        ("0 9 * * mon-fri", "2030-01-04T10:00:00", "2030-01-07T09:00:00"),  # Friday -> Monday
        ("0 0 13 * 5", "2030-01-01T00:00:00", "2030-01-04T00:00:00"),  # day 13 OR a Friday
        ("0 0 * * 7", "2030-01-01T00:00:00", "2030-01-06T00:00:00"),  # 7 is Sunday
        ("5,10-12/2 * * * *", "2030-01-01T12:06:00", "2030-01-01T12:10:00"),
        ("0 0 29 2 *", "2030-01-01T00:00:00", "2032-02-29T00:00:00"),
    ],
)
def test_next_after(expr, after, expected):
    assert Cron.parse(expr).next_after(at(after)) == at(expected)


def test_time_zone_and_daylight_saving():
    paris = Cron.parse("30 2 * * *", "Europe/Paris")
    assert paris.next_after(at("2030-01-01T00:00:00")) == at("2030-01-01T01:30:00")
    # 2030-03-31 02:30 does not exist in Paris: fires when the clock jumps, 03:00 local = 01:00 UTC
    assert paris.next_after(at("2030-03-30T12:00:00")) == at("2030-03-31T01:00:00")
    # 02:30 happens twice on 2030-10-27: fires once, on the first
    first = paris.next_after(at("2030-10-26T12:00:00"))
    assert first == at("2030-10-27T00:30:00")
    assert paris.next_after(first) == at("2030-10-28T01:30:00")


@pytest.mark.parametrize(
    ("expr", "zone", "message"),
    [
        ("* * * *", None, "has 4 fields"),
        ("61 * * * *", None, "minute: 61 is out of range 0-59"),
        ("* 24 * * *", None, "hour: 24 is out of range 0-23"),
        ("* * * foo *", None, "month: 'foo' is not a number or a name"),
        ("*/0 * * * *", None, "step '0' must be a positive number"),
        ("5-1 * * * *", None, "range 5-1 goes backwards"),
        ("0 0 30 2 *", None, "never fires"),
        ("@sometimes", None, "unknown macro '@sometimes': use one of @yearly"),
        ("@reboot", None, "unknown macro '@reboot'"),
        ("hourly", None, "has 1 field;"),
        ("60 * * * *", None, "minute: 60 is out of range 0-59"),
        ("* * 31 2 *", None, "never fires"),
        ("0 0 31 4,6,9,11 *", None, "never fires"),
        ("* * 0 * *", None, "day of month: 0 is out of range 1-31"),
        ("* * * 13 *", None, "month: 13 is out of range 1-12"),
        ("* * * * 8", None, "day of week: 8 is out of range 0-7"),
        ("* * * * funday", None, "day of week: 'funday' is not a number or a name"),
        ("-1 * * * *", None, "minute: '' is not a number"),
        ("1.5 * * * *", None, "minute: '1.5' is not a number"),
        ("\u00b2 * * * *", None, "minute: '\u00b2' is not a number"),  # isdigit() but not int()
        ("\u0663 * * * *", None, "is not a number"),  # an Arabic-Indic 3: not a cron digit
        ("99999999999999999999 * * * *", None, "is not a number"),
        ("*/99999999999999999999 * * * *", None, "step"),
        ("*/-1 * * * *", None, "step '-1' must be a positive number"),
        (",,, * * * *", None, "minute: '' is not a number"),
        ("* * * * * *", None, "has 6 fields"),
        ("", None, "has 0 fields"),
        ("* * * * *", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("* * * * *", "UTC+1", "Etc/GMT-1 for UTC\\+1"),
        ("* * * * *", "../../etc/passwd", "unknown time zone"),
        ("* * * * *", "/etc/localtime", "unknown time zone"),
        ("* * * * *", "Europe", "unknown time zone 'Europe'"),
        ("* * * * *", "europe/paris", "unknown time zone"),
        ("* * * * *", "Europe/Paris\n", "unknown time zone"),
    ],
)
def test_bad_expressions(expr, zone, message):
    with pytest.raises(CronError, match=message.replace("(", r"\(").replace("*", r"\*").replace("'", "'")):
        Cron.parse(expr, zone)


def test_ticks_between_keeps_the_last_ones_and_counts_all():
    ticks, total = Cron.parse("* * * * *").ticks_between(
        at("2030-01-01T12:00:00"), at("2030-01-01T12:10:00"), 3
    )
    assert total == 10
    assert ticks == [at("2030-01-01T12:08:00"), at("2030-01-01T12:09:00"), at("2030-01-01T12:10:00")]


@pytest.mark.parametrize(
    ("expr", "zone"),
    [("*/60 * * * *", None), ("0 0 29 2 *", None), ("@YEARLY", None), ("0 0 * * sun,7", None),
     ("0 12 * * *", "Etc/GMT-14"), ("0 0 * * *", "Pacific/Kiritimati"),
     ("30 1 * * *", "Australia/Lord_Howe")],
)  # fmt: skip
def test_odd_but_valid_expressions(expr, zone):
    cron = Cron.parse(expr, zone)
    tick = cron.next_after(at("2030-01-01T00:00:00"))
    assert tick is not None and tick > at("2030-01-01T00:00:00")


def test_a_daylight_saving_gap_of_thirty_minutes():
    # Lord Howe Island moves its clocks by 30 minutes: 02:00 -> 02:30 on 2030-10-06
    howe = Cron.parse("15 2 * * *", "Australia/Lord_Howe")
    tick = howe.next_after(at("2030-10-05T12:00:00"))
    assert tick is not None and tick.astimezone(howe.zone).strftime("%H:%M") == "02:30"


@pytest.mark.parametrize(
    "after", ["2028-02-29T10:00:00", "9999-12-31T23:59:59", "9999-12-30T00:00:00", "0001-01-01T00:00:00"]
)
def test_any_instant_can_be_asked_about(after):
    """A leap day, the end of time, the start of time: a next tick or None, never an exception."""
    for zone in (None, "Pacific/Kiritimati", "Etc/GMT+12"):
        cron = Cron.parse("0 0 * * *", zone)
        tick = cron.next_after(at(after))
        assert tick is None or tick > at(after)
        ticks, total = cron.ticks_between(at(after), datetime.max.replace(tzinfo=UTC), 2)
        assert total == len(ticks) or total > 2


def test_leap_day_start_is_not_a_crash():
    cron = Cron.parse("0 0 29 2 *")
    assert cron.next_after(at("2028-02-29T10:00:00")) == at("2032-02-29T00:00:00")


@pytest.mark.parametrize("expr", ["*/15 1-4 * * *", "30 2 * * *", "0,30 1-3 * * *", "0 0 29 2 *"])
def test_ticks_between_is_next_after_repeated(expr):
    """Across both daylight-saving changes of a year: one walk gives what asking tick by tick gives."""
    cron = Cron.parse(expr, "Europe/Paris")
    after, until = at("2030-03-30T00:00:00"), at("2030-10-28T00:00:00")
    chained, moment = [], cron.next_after(after)
    while moment is not None and moment <= until:
        chained.append(moment)
        moment = cron.next_after(moment)
    ticks, total = cron.ticks_between(after, until, 100_000)
    assert ticks == chained and total == len(chained)
    assert ticks == sorted(set(ticks)), "in order, each once"


def test_a_leap_day_across_a_century():
    # 2100 is not a leap year: the 29th of February after 2096 is in 2104, eight years on
    assert Cron.parse("0 0 29 2 *").next_after(at("2097-03-01T00:00:00")) == at("2104-02-29T00:00:00")


def test_a_week_of_minutes_is_counted_quickly():
    import time

    started = time.perf_counter()
    ticks, total = Cron.parse("* * * * *").ticks_between(
        at("2030-01-01T00:00:00"), at("2030-01-09T00:00:00"), 6
    )
    assert total == 10_000 and len(ticks) == 6
    assert time.perf_counter() - started < 2, "one walk, not 10,000 searches (16 s before)"
