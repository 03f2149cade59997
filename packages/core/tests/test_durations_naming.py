from __future__ import annotations

from datetime import timedelta

import pytest

from troupe.durations import format_duration, parse_duration
from troupe.naming import dns1123_label, is_dns1123_label, standard_labels


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("4h", 14400), ("2h30m", 9000), ("90s", 90), ("1.5h", 5400), ("1d", 86400), ("250ms", 0.25), ("0s", 0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["4 hours", "-1h", "", "h", "4", "4x", "1h-30m", " "])
def test_bad_durations_say_what_to_write(text: str) -> None:
    with pytest.raises(ValueError, match="use a number and a unit"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["99999999999999d", "1000000000s", "36501d", "999999999d999999999d"])
def test_huge_durations_are_refused_not_overflowed(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_duration_field_names_itself() -> None:
    from pydantic import BaseModel, ValidationError

    from troupe import Duration

    class Spec(BaseModel):
        duration: Duration

    assert Spec(duration="36500d").duration == "36500d"
    with pytest.raises(ValidationError, match="maximum of 36500d"):
        Spec(duration="99999d")


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (90, "1m30s"), (9000, "2h30m"), (3600, "1h")])
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


def test_plain_names_are_kept() -> None:
    assert dns1123_label("intro", "alice", "home") == "intro-alice-home"
    assert dns1123_label("team-x", "", "password") == "team-x-password"


def test_names_that_need_cleaning_carry_a_hash() -> None:
    name = dns1123_label("My_Workshop", "Alice")
    assert name.startswith("my-workshop-alice-") and is_dns1123_label(name)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("team.x",), ("team-x",)),
        (("Team-X",), ("team-x",)),
        (("pc", "1", "x-1-y", "1"), ("pc-1-x", "1", "y", "1")),
        (("a", "b-c"), ("a-b", "c")),
        (("w" * 60, "a"), ("w" * 60, "b")),
        (("w" * 70,), ("w" * 71,)),
        (("a.b", "c"), ("a", "b.c")),
    ],
)
def test_adversarial_pairs_never_meet(a: tuple[str, ...], b: tuple[str, ...]) -> None:
    assert dns1123_label(*a) != dns1123_label(*b)
    assert is_dns1123_label(dns1123_label(*a)) and is_dns1123_label(dns1123_label(*b))


def test_no_two_short_tuples_meet() -> None:
    """Exhaustive over an alphabet holding every troublesome character: injective per arity."""
    alphabet = ["a", "b", "-", ".", "A", "1"]
    words = [x + y for x in alphabet for y in alphabet] + alphabet
    for arity in (1, 2):
        seen: dict[str, tuple[str, ...]] = {}
        tuples = [(w,) for w in words] if arity == 1 else [(w, v) for w in words for v in words]
        for parts in tuples:
            if not all(p.strip("-.") for p in parts):
                continue  # parts that clean away to nothing are the caller's to refuse
            name = dns1123_label(*parts)
            assert is_dns1123_label(name), parts
            assert seen.setdefault(name, parts) == parts, (parts, seen[name])


def test_long_names_are_cut_and_hashed_uniquely() -> None:
    a = dns1123_label("w" * 70, "participant-a")
    b = dns1123_label("w" * 70, "participant-b")
    assert len(a) == 63 and len(b) == 63 and a != b
    assert is_dns1123_label(a) and is_dns1123_label(b)
    assert dns1123_label("w" * 70, "participant-a") == a  # stable


def test_standard_labels() -> None:
    labels = standard_labels("workshop", "Workshop", "intro", component="rstudio")
    assert labels == {
        "app.kubernetes.io/managed-by": "troupe-workshop",
        "app.kubernetes.io/name": "workshop",
        "app.kubernetes.io/instance": "intro",
        "app.kubernetes.io/part-of": "troupe",
        "app.kubernetes.io/component": "rstudio",
    }


def test_parsing_is_cached_but_a_refused_duration_is_refused_every_time() -> None:
    assert parse_duration("2h30m") == parse_duration("2h30m") == timedelta(hours=2, minutes=30)
    for _ in range(2):
        with pytest.raises(ValueError, match="invalid duration"):
            parse_duration("2 hours")
        with pytest.raises(ValueError, match="invalid duration"):
            parse_duration(["4h"])  # type: ignore[arg-type]  # not a string: no cache key, refused all the same
