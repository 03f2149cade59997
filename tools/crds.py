"""Regenerate every chart's generated files from the plugins' declarations, or check they are current.

uv run python tools/crds.py           # write each charts/<operator>-operator/:
                                      #   crds/<operator>.yaml, crds/kopf-peering.yaml (the CRDs),
                                      #   files/rbac.yaml and the RBAC table of README.md (tools/charts.py)
uv run python tools/crds.py --check   # exit 1 and show a diff when a committed file is stale
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from charts import operator_grants, render_rbac, with_rbac_table
from troupe.crd import build_crd, render
from troupe.engine.peering import peering_crds
from troupe.plugins import collect_kinds, get_plugin_manager

ROOT = Path(__file__).resolve().parent.parent


def expected_files() -> dict[Path, str]:
    pm = get_plugin_manager()
    files: dict[Path, str] = {}
    kinds = collect_kinds(pm)
    for chart in sorted((ROOT / "charts").glob("*-operator")):
        operator = chart.name.removesuffix("-operator")
        docs = [build_crd(k) for k in kinds if k.operator == operator]
        if docs:
            files[chart / "crds" / f"{operator}.yaml"] = render(docs)
        # every chart runs kopf with peering, whether or not its kinds exist yet
        files[chart / "crds" / "kopf-peering.yaml"] = render(peering_crds())
        grants = operator_grants(kinds, operator)
        files[chart / "files" / "rbac.yaml"] = render_rbac(operator, grants)
        readme = chart / "README.md"
        files[readme] = with_rbac_table(readme.read_text(), grants)
    return files


def stale(files: dict[Path, str], root: Path = ROOT) -> list[str]:
    """A unified diff (committed → generated) for each file whose committed text differs."""
    diffs = []
    for path, text in files.items():
        current = path.read_text() if path.exists() else ""
        if current != text:
            rel = path.relative_to(root)
            diff = difflib.unified_diff(
                current.splitlines(True), text.splitlines(True), f"{rel} (committed)", f"{rel} (declarations)"
            )
            diffs.append("".join(diff))
    return diffs


def write(files: dict[Path, str], root: Path = ROOT) -> list[Path]:
    """Write the files whose text differs; the paths written, relative to ``root``."""
    written = []
    for path, text in files.items():
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path.relative_to(root))
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a committed file is stale")
    args = parser.parse_args()
    if not args.check:
        for rel in write(expected_files()):
            print(f"wrote {rel}")
        return 0
    diffs = stale(expected_files())
    sys.stdout.writelines(diffs)
    if diffs:
        print(
            f"\n{len(diffs)} generated file(s) are stale: run `make crds` and commit them.", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
