"""Time the workshop operator's restart with N settled Workshops, again and again, on a kept namespace.

    uv run --frozen python tools/restart_timing.py [--workshops 1000] [--runs 5] [--peering] [--direct]

The first run creates namespace ``restart-<N>`` with N Workshops (the bench's) and runs the operator until
every one is Running; later runs reuse it (``--clean`` deletes it instead). Each run starts the operator
(``uv run troupe run workshop --all-namespaces [--standalone]``, or the venv's ``troupe`` with ``--direct``)
and prints: start -> first reconcile, start -> /readyz, the operator's CPU seconds at its first
reconcile, its writes in the first 15 s (must be 0), the load average, and the milestones its log
reports (its listings and the ``Started in`` summary), relative to the start.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "limits"))
from bench_workshop import CRD, ENV, GROUP, burst, settle
from harness import LOGS, Operator, apply_crd, cpu_seconds, delete_namespace, load
from kube import ROOT, Api

_LINE = re.compile(r"^(\S+ \S+) \S+ +(\S+): (.*)$")


async def populate(api: Api, namespace: str, n: int) -> None:
    got = await api.request("GET", f"/api/v1/namespaces/{namespace}", ok=(404,))
    if got.get("kind") == "Namespace":
        return
    await api.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    while not (await api.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts")).get("items"):  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    op = Operator("workshop", ENV)
    op.start()
    await op.until_ready()
    print(f"created {n} Workshops, all Running in {await burst(api, namespace, n):.1f} s", flush=True)
    await settle(op)
    op.stop()


async def one_run(peering: bool, direct: bool) -> dict[str, float]:
    op = Operator("workshop", ENV)
    if direct:
        op.argv = [str(ROOT / ".venv" / "bin" / "troupe"), *op.argv[3:]]
    if peering:
        op.argv.remove("--standalone")
    before = load()
    wall = time.time()
    op.start()
    try:
        first, cpu = await _first_reconcile(op)
        ready = await op.until_ready()
        await asyncio.sleep(max(0.0, 15 - (time.perf_counter() - op.started)))
        writes = sum((await op.writes_by_verb()).values())
    finally:
        op.stop()  # also when it failed: a stray operator would hold the peering and load the machine
    print(
        f"first reconcile {first:.2f} s, /readyz {ready:.2f} s, CPU {cpu:.2f} s, writes {writes:.0f}, "
        f"load {before}"
    )
    for when, what in _milestones(op):
        print(f"    {when - wall:6.2f}  {what}")
    return {"first": first, "ready": ready, "cpu": cpu, "writes": writes}


async def _first_reconcile(op: Operator) -> tuple[float, float]:
    """Seconds from the start to the first reconcile counted, and the operator's CPU seconds then."""
    while await op.total("reconciles_total") == 0:
        if time.perf_counter() - op.started > 120:
            sys.exit("no reconcile within 120 s of the restart")
        await asyncio.sleep(0.02)
    return time.perf_counter() - op.started, cpu_seconds(op.pid)


def _milestones(op: Operator) -> list[tuple[float, str]]:
    """The log's lines about the start: the listings and the summary (troupe.startup)."""
    out = []
    for line in (LOGS / op.log_name).read_text().splitlines():
        m = _LINE.match(line)
        if m and (m.group(2) == "troupe.startup" or " listed " in m.group(3)):
            seconds, millis = m.group(1).split(",")
            stamp = time.mktime(time.strptime(seconds, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000
            out.append((stamp, m.group(3)))
    return out


async def main(n: int, runs: int, peering: bool, direct: bool, clean: bool) -> None:
    api = await Api.connect()
    namespace = f"restart-{n}"
    try:
        if clean:
            await delete_namespace(api, namespace, strip=[f"{GROUP}/namespaces/{namespace}/workshops"])
            return
        await apply_crd(api, CRD)
        await populate(api, namespace, n)
        results = [await one_run(peering, direct) for _ in range(runs)]
        for key in ("first", "ready", "cpu"):
            values = [r[key] for r in results]
            median = statistics.median(values)
            print(f"{key}: median {median:.2f} s, min {min(values):.2f}, max {max(values):.2f}")
    finally:
        await api.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workshops", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--peering", action="store_true", help="without --standalone")
    parser.add_argument("--direct", action="store_true", help="the venv's troupe, not uv run")
    parser.add_argument("--clean", action="store_true", help="delete the namespace and stop")
    args = parser.parse_args()
    asyncio.run(main(args.workshops, args.runs, args.peering, args.direct, args.clean))
