"""Plugins use only the public ``troupe`` package: no private core module, no other plugin."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import troupe

ROOT = Path(__file__).resolve().parents[3]
PLUGIN_SOURCES = sorted([*ROOT.glob("plugins/*/src/**/*.py"), *ROOT.glob("packages/example/src/**/*.py")])


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("path", PLUGIN_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_import_only_the_public_core(path: Path) -> None:
    own = path.relative_to(ROOT).parts[-2] if "src" in path.parts else ""
    for module in imported_modules(path):
        top = module.split(".")[0]
        assert not module.startswith("troupe."), f"{path.name} imports the private core module {module}"
        if top.startswith("troupe_"):
            assert top == own, f"{path.name} imports another plugin, {top}"


def test_the_public_names_exist() -> None:
    assert all(hasattr(troupe, name) for name in troupe.__all__)
