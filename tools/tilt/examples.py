"""Tilt: apply an operator's examples and wait until each of its reconciled objects shows a phase.

    python tools/tilt/examples.py <operator> <namespace> [--timeout 120]

The rule for plugins/<operator>/examples/*.yaml:

- every namespaced object lands in the run's namespace, whatever namespace the file names (catalyst's
  seed manifests name my-team), so a run touches no other namespace and one namespace delete removes it;
- every object gets the label troupe.dev/tilt=<namespace>; a cluster-scoped one (a Workspace, a
  DevServerFlavor) keeps its name, so one of that name that this run did not make is refused (the run
  fails rather than take over someone else's object), and the cleanup finds the run's ones by the label;
- a ``status`` section is dropped (the status subresource ignores it anyway);
- a file the API server is known to refuse says so in a line ``# tilt: skip: <why>``: it is left out,
  with the reason printed; any other refusal fails the run.

Objects of kinds without a status subresource (a Secret; configuration, like a DevServerFlavor) are not
reconciled: nothing to wait for.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
LABEL = "troupe.dev/tilt"
SKIP = re.compile(r"^#\s*tilt:\s*skip:\s*(.+)$", re.MULTILINE)


def skip_reason(text: str) -> str | None:
    """Why a file is not applied (its ``# tilt: skip: <why>`` line), or None."""
    match = SKIP.search(text)
    return match.group(1).strip() if match else None


def prepare(docs: Iterable[Any], namespace: str, cluster_kinds: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """The objects of one example file as this run applies them. ``cluster_kinds``: (apiVersion's group,
    kind) of the cluster-scoped kinds."""
    out = []
    for doc in docs:
        if not doc:
            continue
        obj = {k: v for k, v in doc.items() if k != "status"}
        meta = dict(obj.get("metadata") or {})
        meta["labels"] = {**(meta.get("labels") or {}), LABEL: namespace}
        if (group_of(obj), obj.get("kind", "")) in cluster_kinds:
            meta.pop("namespace", None)
        else:
            meta["namespace"] = namespace
        obj["metadata"] = meta
        out.append(obj)
    return out


def group_of(obj: dict[str, Any]) -> str:
    return str(obj.get("apiVersion", "")).rpartition("/")[0]


def resource(obj: dict[str, Any]) -> str:
    """kubectl's name of the object's kind (Kind.version.group; a core kind by its Kind)."""
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    return f"{obj['kind']}.{version}.{group}" if group else str(obj["kind"])


def kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [os.environ["KUBECTL"], *args], input=stdin, capture_output=True, text=True, check=False
    )


def cluster_scoped_kinds() -> set[tuple[str, str]]:
    out = kubectl("api-resources", "--namespaced=false", "-o", "wide", "--no-headers")
    kinds = set()
    for line in out.stdout.splitlines():
        # NAME [SHORTNAMES] APIVERSION NAMESPACED KIND VERBS...: find the columns from "false"
        cols = line.split()
        i = cols.index("false")
        kinds.add((cols[i - 1].rpartition("/")[0], cols[i + 1]))
    return kinds


def refuse_foreign(obj: dict[str, Any], namespace: str) -> None:
    """A cluster-scoped object of this name that this run did not make: not ours to change."""
    got = kubectl("get", resource(obj), obj["metadata"]["name"], "-o", "json", "--ignore-not-found")
    if got.returncode == 0 and got.stdout.strip():
        labels = json.loads(got.stdout)["metadata"].get("labels") or {}
        if labels.get(LABEL) != namespace:
            raise SystemExit(
                f"{obj['kind']} {obj['metadata']['name']} exists and was not made by this run "
                f"({LABEL}={labels.get(LABEL)}): delete it, or run on a cluster of your own"
            )


def reconciled_kinds() -> set[tuple[str, str]]:
    """(group, kind) of the CRDs with a status subresource: the kinds an operator reconciles."""
    crds = json.loads(kubectl("get", "crd", "-o", "json").stdout)["items"]
    return {
        (crd["spec"]["group"], crd["spec"]["names"]["kind"])
        for crd in crds
        if any("status" in (v.get("subresources") or {}) for v in crd["spec"]["versions"])
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("operator")
    ap.add_argument("namespace")
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args(argv)
    files = sorted((ROOT / "plugins" / args.operator / "examples").glob("*.yaml"))
    if not files:
        print(f"no plugins/{args.operator}/examples/*.yaml")
        return 0
    cluster_kinds = cluster_scoped_kinds()
    applied: list[dict[str, Any]] = []
    for path in files:
        text = path.read_text()
        reason = skip_reason(text)
        if reason:
            print(f"{path.name}: skipped: {reason}")
            continue
        objects = prepare(yaml.safe_load_all(text), args.namespace, cluster_kinds)
        for obj in objects:
            if (group_of(obj), obj.get("kind", "")) in cluster_kinds:
                refuse_foreign(obj, args.namespace)
        out = kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(objects))
        if out.returncode != 0:
            raise SystemExit(f"{path.name}: refused:\n{out.stderr.strip()}")
        applied += objects
    reconciled = reconciled_kinds()
    deadline = time.monotonic() + args.timeout
    for obj in applied:
        label = f"{obj['kind']} {obj['metadata']['name']}"
        if (group_of(obj), obj["kind"]) not in reconciled:
            print(f"{label}: not reconciled (no status), no phase to wait for")
            continue
        where = ["-n", args.namespace] if "namespace" in obj["metadata"] else []
        while True:
            got = kubectl(
                "get", resource(obj), obj["metadata"]["name"], *where, "-o", "jsonpath={.status.phase}"
            )
            if got.stdout.strip():
                print(f"{label}: {got.stdout.strip()}")
                break
            if time.monotonic() > deadline:
                print(f"{label}: no phase after {args.timeout:.0f}s", file=sys.stderr)
                return 1
            time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
