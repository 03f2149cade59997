"""tools/release.py: the version check on this tree, and bumps on a copy of it."""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tools/ is scripts, not a package

import release

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 11, 26)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The version-bearing files of this repository, copied."""
    for pattern in (
        "uv.lock",
        "packages/*/pyproject.toml",
        "plugins/*/pyproject.toml",
        "plugins/*/CHANGELOG.md",
        "charts/*/Chart.yaml",
        "charts/*/Chart.lock",
    ):
        for src in ROOT.glob(pattern):
            dst = tmp_path / src.relative_to(ROOT)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
    return tmp_path


def test_this_tree_agrees() -> None:
    assert release.problems(ROOT) == []


def test_bump_plugin_moves_changelog_and_chart(tree: Path) -> None:
    pkg = release.packages(tree)["workshop"]
    old = pkg.version
    changelog = pkg.changelog
    changelog.write_text("# Changelog\n\n## Unreleased\n\n- a fix\n\n## 0.0.9 (2026-01-01)\n\n- old\n")
    tags = release.bump("workshop", "minor", tree, TODAY)
    new = release.bumped(old, "minor")
    chart = yaml.safe_load((tree / "charts/workshop-operator/Chart.yaml").read_text())
    assert pkg.version == new
    assert chart["appVersion"] == new
    assert tags == [f"workshop-v{new}", f"chart-workshop-operator-{chart['version']}"]
    assert changelog.read_text() == (
        f"# Changelog\n\n## Unreleased\n\n## {new} (2026-11-26)\n\n- a fix\n\n"
        "## 0.0.9 (2026-01-01)\n\n- old\n"
    )
    # the lock still names the old version: the check says so until `uv lock` runs
    assert any("uv.lock" in p for p in release.problems(tree))


def test_bump_refuses_an_empty_unreleased_section(tree: Path) -> None:
    release.packages(tree)["workshop"].changelog.write_text("# Changelog\n\n## Unreleased\n\n## 0.1.0\n- x\n")
    with pytest.raises(SystemExit, match="empty"):
        release.bump("workshop", "patch", tree, TODAY)


def test_versioned_unreleased_heading_is_released(tree: Path) -> None:
    changelog = release.packages(tree)["observatory"].changelog
    changelog.write_text("# Changelog\n\n## 0.1.0 (unreleased)\n\n- first\n")
    release.bump("observatory", "patch", tree, TODAY)
    assert "## Unreleased\n\n## 0.1.1 (2026-11-26)\n\n- first\n" in changelog.read_text()


def test_check_finds_each_disagreement(tree: Path) -> None:
    chart = tree / "charts/workshop-operator/Chart.yaml"
    chart.write_text(chart.read_text().replace('appVersion: "0.1.0"', 'appVersion: "9.9.9"'))
    plugin = tree / "plugins/observatory/pyproject.toml"
    plugin.write_text(plugin.read_text().replace('"troupe-core"]', '"troupe-core>=0.2,<0.3"]'))
    found = release.problems(tree)
    assert any("appVersion 9.9.9" in p for p in found), found
    assert any("excludes troupe-core" in p and "observatory" in p for p in found), found


def test_library_chart_bump_repins_dependents(tree: Path) -> None:
    tags = release.bump("chart-troupe-common", "minor", tree, TODAY)
    assert tags == ["chart-troupe-common-0.2.0"]
    assert release.problems(tree) == []
    lock = yaml.safe_load((tree / "charts/workshop-operator/Chart.lock").read_text())
    assert lock["dependencies"][0]["version"] == "0.2.0"


def test_dist_check_names_missing_artifacts(tree: Path, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    found = release.problems(tree, dist)
    assert any("troupe_workshop-" in p for p in found)
    assert any("workshop-operator-" in p and ".tgz" in p for p in found)
    assert not any("troupe-common-" in p and ".tgz" in p for p in found)  # a library chart is not packaged
