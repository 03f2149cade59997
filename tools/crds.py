"""Regenerate every chart's crds/ from the plugins' pydantic models, or check that they are current.

uv run python tools/crds.py           # write charts/<operator>-operator/crds/<operator>.yaml
uv run python tools/crds.py --check   # exit 1 and show a diff when a committed file is stale
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

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
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a committed CRD is stale")
    args = parser.parse_args()
    stale = 0
    for path, text in expected_files().items():
        current = path.read_text() if path.exists() else ""
        if current == text:
            continue
        rel = path.relative_to(ROOT)
        if args.check:
            stale += 1
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(True), text.splitlines(True), f"{rel} (committed)", f"{rel} (models)"
                )
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {rel}")
    if stale:
        print(f"\n{stale} CRD file(s) are stale: run `make crds` and commit the result.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
