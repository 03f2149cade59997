"""Versions of each component, their consistency check, and the release verb.

    python tools/release.py check                      fail when versions disagree (in `make test`)
    python tools/release.py check --dist dist          ... and dist/ holds each component's wheel and chart
    python tools/release.py bump workshop minor        bump one component, print the tag(s) to push
    python tools/release.py version workshop           print a component's version (image labels)

Components and their tags: `core` (packages/core, `core-v0.2.0`), each plugin by its name (plugins/<name>,
`workshop-v0.2.0`; its chart charts/<name>-operator moves with it: appVersion = the plugin's version, and
the chart's own version is bumped by the same step, `chart-workshop-operator-0.2.0`), `example`
(packages/example), and a chart alone (`chart-<chart>`, for a change only to the chart, or to the library
chart `troupe-common`).

Files are edited line by line (a `version` line), never re-serialised, so comments and order stay.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
# "## Unreleased" or "## 0.1.0 (unreleased)": the section a release moves under the new version.
UNRELEASED = re.compile(r"^## +(?:(?P<version>\S+) +)?\(?unreleased\)?\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Package:
    """A Python distribution of the workspace: its folder, distribution name and tag prefix."""

    name: str  # component name: core, example, workshop, ...
    path: Path

    @property
    def pyproject(self) -> Path:
        return self.path / "pyproject.toml"

    @property
    def changelog(self) -> Path:
        return self.path / "CHANGELOG.md"

    @property
    def distribution(self) -> str:
        return str(tomllib.loads(self.pyproject.read_text())["project"]["name"])

    @property
    def version(self) -> str:
        return str(tomllib.loads(self.pyproject.read_text())["project"]["version"])

    @property
    def tag(self) -> str:
        return f"{self.name}-v{self.version}"

    def chart(self, root: Path) -> Path | None:
        chart = root / "charts" / f"{self.name}-operator"
        return chart if (chart / "Chart.yaml").is_file() else None


def packages(root: Path = ROOT) -> dict[str, Package]:
    found = {"core": Package("core", root / "packages/core")}
    if (root / "packages/example/pyproject.toml").is_file():
        found["example"] = Package("example", root / "packages/example")
    for p in sorted((root / "plugins").glob("*/pyproject.toml")):
        found[p.parent.name] = Package(p.parent.name, p.parent)
    return found


def charts(root: Path = ROOT) -> dict[str, Path]:
    return {p.parent.name: p.parent for p in sorted((root / "charts").glob("*/Chart.yaml"))}


def chart_meta(chart: Path) -> dict[str, Any]:
    meta: dict[str, Any] = yaml.safe_load((chart / "Chart.yaml").read_text())
    return meta


def bumped(version: str, step: str) -> str:
    m = SEMVER.match(version)
    if not m:
        raise SystemExit(f"version {version!r} is not MAJOR.MINOR.PATCH")
    major, minor, patch = map(int, m.groups())
    if step == "major":
        return f"{major + 1}.0.0"
    if step == "minor":
        return f"{major}.{minor + 1}.0"
    if step == "patch":
        return f"{major}.{minor}.{patch + 1}"
    raise SystemExit(f"BUMP must be major, minor or patch, not {step!r}")


def set_line(path: Path, pattern: str, line: str) -> None:
    """Replace the first line matching `pattern` (anchored at a line start) by `line`."""
    text = path.read_text()
    new, n = re.subn(pattern, lambda _: line, text, count=1, flags=re.M)
    if n != 1:
        raise SystemExit(f"{path}: no line matching {pattern!r}")
    path.write_text(new)


def set_pyproject_version(pyproject: Path, version: str) -> None:
    set_line(pyproject, r'^version = ".*"$', f'version = "{version}"')


def set_chart_field(chart: Path, field: str, version: str) -> None:
    # top-level only: a dependency's `  version:` is indented
    value = f'"{version}"' if field == "appVersion" else version
    set_line(chart / "Chart.yaml", rf"^{field}: .*$", f"{field}: {value}")


def release_changelog(changelog: Path, version: str, today: dt.date) -> None:
    """Move the Unreleased section under `version`, leaving an empty Unreleased section on top."""
    text = changelog.read_text() if changelog.is_file() else ""
    m = UNRELEASED.search(text)
    if not m:
        raise SystemExit(f"{changelog}: no '## Unreleased' section to release")
    rest = text[m.end() :]
    following = re.search(r"^## ", rest, re.M)
    body = rest[: following.start()] if following else rest
    if not body.strip():
        raise SystemExit(f"{changelog}: the Unreleased section is empty; nothing to release")
    changelog.write_text(f"{text[: m.start()]}## Unreleased\n\n## {version} ({today.isoformat()})\n{rest}")


def bump_chart(chart: Path, step: str) -> str:
    new = bumped(str(chart_meta(chart)["version"]), step)
    set_chart_field(chart, "version", new)
    return f"chart-{chart.name}-{new}"


def bump(component: str, step: str, root: Path = ROOT, today: dt.date | None = None) -> list[str]:
    """Bump one component; return the tags to push. Edits files only (no git, no lock)."""
    today = today or dt.date.today()
    pkgs, all_charts = packages(root), charts(root)
    if component.startswith("chart-"):
        name = component.removeprefix("chart-")
        if name not in all_charts:
            raise SystemExit(f"no chart {name!r}; charts: {', '.join(all_charts)}")
        tags = [bump_chart(all_charts[name], step)]
        if name == "troupe-common":  # the operator charts pin the library's version
            new = str(chart_meta(all_charts[name])["version"])
            for chart in all_charts.values():
                if (chart / "Chart.lock").is_file() or "dependencies" in chart_meta(chart):
                    _pin_common(chart, new)
        return tags
    if component not in pkgs:
        raise SystemExit(f"no component {component!r}; components: {', '.join(pkgs)}, chart-<chart>")
    pkg = pkgs[component]
    new = bumped(pkg.version, step)
    release_changelog(pkg.changelog, new, today)
    set_pyproject_version(pkg.pyproject, new)
    tags = [f"{component}-v{new}"]
    own_chart = pkg.chart(root)
    if own_chart is not None:
        set_chart_field(own_chart, "appVersion", new)
        tags.append(bump_chart(own_chart, step))
    return tags


def _pin_common(chart: Path, version: str) -> None:
    for f in ("Chart.yaml", "Chart.lock"):
        path = chart / f
        if path.is_file():
            text = path.read_text()
            new = re.sub(
                r"(- name: troupe-common\n(?:[ \t]+\S.*\n)*?[ \t]+version: )\S+", rf"\g<1>{version}", text
            )
            path.write_text(new)


def problems(root: Path = ROOT, dist: Path | None = None) -> list[str]:
    """Every disagreement between versions, as messages naming the files to fix."""
    out: list[str] = []
    pkgs, all_charts = packages(root), charts(root)
    core = Version(pkgs["core"].version)
    lock = {p["name"]: p["version"] for p in tomllib.loads((root / "uv.lock").read_text()).get("package", [])}
    for pkg in pkgs.values():
        rel = pkg.pyproject.relative_to(root)
        if not SEMVER.match(pkg.version):
            out.append(f"{rel}: version {pkg.version!r} is not MAJOR.MINOR.PATCH")
        if lock.get(pkg.distribution) != pkg.version:
            out.append(
                f"uv.lock has {pkg.distribution} {lock.get(pkg.distribution)}, {rel} {pkg.version}: "
                "run `uv lock`"
            )
        for dep in tomllib.loads(pkg.pyproject.read_text())["project"].get("dependencies", []):
            req = Requirement(dep)
            if req.name == "troupe-core" and not req.specifier.contains(core, prereleases=True):
                out.append(f"{rel}: requires {dep!r}, which excludes troupe-core {core}")
        if pkg.name != "core" and pkg.name != "example":
            if not pkg.changelog.is_file():
                out.append(f"{pkg.changelog.relative_to(root)} is missing")
            chart = pkg.chart(root)
            if chart is not None and str(chart_meta(chart).get("appVersion")) != pkg.version:
                out.append(
                    f"{chart.relative_to(root)}/Chart.yaml: appVersion {chart_meta(chart).get('appVersion')} "
                    f"!= {rel} version {pkg.version}"
                )
    common = all_charts.get("troupe-common")
    for chart in all_charts.values():
        meta = chart_meta(chart)
        if not SEMVER.match(str(meta.get("version"))):
            out.append(
                f"{chart.relative_to(root)}/Chart.yaml: version {meta.get('version')!r} "
                "is not MAJOR.MINOR.PATCH"
            )
        deps = [
            d
            for d in meta.get("dependencies") or []
            if isinstance(d, dict) and d.get("name") == "troupe-common"
        ]
        lock_file = chart / "Chart.lock"
        locked = yaml.safe_load(lock_file.read_text()).get("dependencies", []) if lock_file.is_file() else []
        for d in deps + [d for d in locked if d.get("name") == "troupe-common"]:
            if common is not None and str(d.get("version")) != str(chart_meta(common)["version"]):
                out.append(
                    f"{chart.relative_to(root)}: troupe-common {d.get('version')} pinned, "
                    "the library chart is "
                    f"{chart_meta(common)['version']}"
                )
    if dist is not None:
        names = {p.name for p in dist.glob("*")}
        for pkg in pkgs.values():
            wheel = f"{pkg.distribution.replace('-', '_')}-{pkg.version}-py3-none-any.whl"
            if wheel not in names:
                out.append(f"{dist}/{wheel} is missing (uv build --package {pkg.distribution})")
        for chart in all_charts.values():
            meta = chart_meta(chart)
            if meta.get("type") != "library" and f"{chart.name}-{meta['version']}.tgz" not in names:
                out.append(f"{dist}/{chart.name}-{meta['version']}.tgz is missing (helm package)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--dist", type=Path)
    b = sub.add_parser("bump")
    b.add_argument("component")
    b.add_argument("step", choices=["major", "minor", "patch"])
    v = sub.add_parser("version")
    v.add_argument("component")
    args = ap.parse_args(argv)
    if args.cmd == "version":
        pkgs = packages()
        if args.component not in pkgs:
            raise SystemExit(f"no component {args.component!r}")
        print(pkgs[args.component].version)
        return 0
    if args.cmd == "check":
        found = problems(ROOT, args.dist)
        for p in found:
            print(f"version check: {p}", file=sys.stderr)
        if not found:
            print(f"versions agree ({', '.join(f'{k} {p.version}' for k, p in packages().items())})")
        return 1 if found else 0
    tags = bump(args.component, args.step)
    # The workspace lock records each member's version; keep it in step (uv keeps every other pin).
    uv = subprocess.run(["bash", "-c", 'exec "${UV:-uv}" lock -q'], cwd=ROOT, check=False)
    if uv.returncode:
        print("`uv lock` failed: run it before committing", file=sys.stderr)
    if args.component == "chart-troupe-common":  # Chart.lock holds a digest only helm computes
        for chart in charts().values():
            if (chart / "Chart.lock").is_file():
                subprocess.run(
                    ["bash", "-c", 'exec "${HELM:-helm}" dependency update --skip-refresh "$0"', chart],
                    cwd=ROOT,
                    check=False,
                )
    left = problems(ROOT)
    for p in left:
        print(f"version check: {p}", file=sys.stderr)
    print("\nReview, then:\n  git commit -am 'Release " + ", ".join(tags) + "'")
    for tag in tags:
        print(f"  git tag {tag} && git push origin {tag}")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
