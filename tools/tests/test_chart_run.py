from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ is scripts, not a package

import chart_run


def test_an_empty_env_value_is_stored_as_none_and_read_as_empty() -> None:
    assert chart_run.env_value({"name": "CLASS"}, "ns", "pod") == ""
    assert chart_run.env_value({"name": "X", "value": "1"}, "ns", "pod") == "1"
    field = {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}
    assert chart_run.env_value(field, "ns", "pod") == "ns"
