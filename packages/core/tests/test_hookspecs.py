"""Every hook is documented the way pytest's hookspec.py is: when, params, return, firstresult."""

from __future__ import annotations

import inspect

import pytest

from troupe import hookspecs

HOOKS = [
    (name, fn) for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "troupe_spec")
]


def test_every_expected_hook_exists() -> None:
    names = {name for name, _ in HOOKS}
    assert names >= {
        "troupe_kinds",
        "troupe_validate",
        "troupe_build_resources",
        "troupe_mutate_resource",
        "troupe_aggregate_status",
        "troupe_status_changed",
        "troupe_finalize",
        "troupe_register_handlers",
    }


@pytest.mark.parametrize(("name", "fn"), HOOKS, ids=[n for n, _ in HOOKS])
def test_hook_is_documented(name: str, fn: object) -> None:
    assert name.startswith("troupe_")
    doc = inspect.getdoc(fn) or ""
    assert "Called" in doc, f"{name}: say when it is called"
    assert ":return:" in doc, f"{name}: say what it returns"
    assert "firstresult" in doc, f"{name}: say whether it is firstresult"
    for param in inspect.signature(fn).parameters:
        assert f":param {param}:" in doc, f"{name}: document parameter {param}"


@pytest.mark.parametrize(("name", "fn"), HOOKS, ids=[n for n, _ in HOOKS])
def test_firstresult_matches_the_docs(name: str, fn: object) -> None:
    first = fn.troupe_spec["firstresult"]  # type: ignore[attr-defined]
    doc = inspect.getdoc(fn) or ""
    assert ("not firstresult" in doc) != first
