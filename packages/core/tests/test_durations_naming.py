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


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (90, "1m30s"), (9000, "2h30m"), (3600, "1h")])
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


def test_short_names_are_kept_and_cleaned() -> None:
    assert dns1123_label("My_Workshop", "Alice") == "my-workshop-alice"


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
