"""Benchmark the observatory operator beside its limit (tools/limits/dag_limit.py): a 100-task DAG.

    uv run --frozen python tools/bench_observatory.py [--tasks 100] [--width 10] [--runs 2]

The DAG has ``tasks / width`` levels of ``width`` tasks; each task depends on two tasks of the level
before. kwok finishes pods at once, so the time is all the program's and the API server's. Each run
alternates the limit program and the operator (`uv run troupe run observatory --all-namespaces
--standalone`, a subprocess), each on a fresh namespace with the same Observatory. The bench watches the
pods and the Observatory itself (one clock for both): the total is first create -> phase Succeeded, and
first pod seen -> last pod seen Succeeded; a task's overhead is the time from the last of its dependencies
being seen Succeeded (the Observatory's create, for the first level) to its pod being seen. Every figure
is printed beside the machine's load average (the machine is shared). The namespaces are deleted after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "limits"))
from harness import (
    Operator,
    Proc,
    Table,
    apply_crd,
    cpu_seconds,
    delete_namespace,
    limit_program,
    load,
    new_namespace,
    ratio,
    rss_mib,
)
from kube import ROOT, Api

GROUP = "workflow.seventh-horizon.io"
CRD = ROOT / "charts" / "observatory-operator" / "crds" / "observatory.yaml"
TASK_LABEL = f"{GROUP}/task"
TIMEOUT = 180.0


def dag(tasks: int, width: int) -> list[dict[str, Any]]:
    out = []
    for i in range(tasks):
        level, slot = divmod(i, width)
        body: dict[str, Any] = {"name": f"t{i:03d}", "image": "busybox:1.36"}
        if level:
            before = (level - 1) * width
            body["dependencies"] = sorted({f"t{before + slot:03d}", f"t{before + (slot + 1) % width:03d}"})
        out.append(body)
    return out


async def one_run(api: Api, namespace: str, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    seen: dict[str, float] = {}
    succeeded: dict[str, float] = {}
    finished = asyncio.Event()
    phase: list[str] = []

    async def pods() -> None:
        async for _, pod in api.list_and_watch(f"/api/v1/namespaces/{namespace}/pods"):
            now = time.perf_counter()
            task = (pod["metadata"].get("labels") or {}).get(TASK_LABEL)
            if task is None:
                continue
            seen.setdefault(task, now)
            if (pod.get("status") or {}).get("phase") == "Succeeded":
                succeeded.setdefault(task, now)

    async def workflow() -> None:
        async for _, obs in api.list_and_watch(
            f"/apis/{GROUP}/v1alpha1/namespaces/{namespace}/observatories"
        ):
            p = (obs.get("status") or {}).get("phase")
            if p in ("Succeeded", "Failed"):
                phase.append(p)
                finished.set()
                return

    watchers = [asyncio.create_task(pods()), asyncio.create_task(workflow())]
    await asyncio.sleep(0.5)
    body = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "Observatory",
        "metadata": {"name": "bench"},
        "spec": {"tasks": tasks},
    }
    started = time.perf_counter()
    await api.request("POST", f"/apis/{GROUP}/v1alpha1/namespaces/{namespace}/observatories", body)
    try:
        await asyncio.wait_for(finished.wait(), TIMEOUT)
    except TimeoutError:
        sys.exit(f"not finished within {TIMEOUT:g}s ({namespace}); {len(succeeded)} tasks Succeeded")
    total = time.perf_counter() - started
    await asyncio.sleep(0.5)
    for w in watchers:
        w.cancel()
    overheads = [
        seen[t["name"]] - max((succeeded[d] for d in t.get("dependencies", [])), default=started)
        for t in tasks
    ]
    status = (
        await api.request("GET", f"/apis/{GROUP}/v1alpha1/namespaces/{namespace}/observatories/bench")
    ).get("status")
    return {
        "phase": phase[0],
        "total": total,
        "pods": max(succeeded.values()) - min(seen.values()),
        "median_ms": statistics.median(overheads) * 1000,
        "p95_ms": sorted(overheads)[int(len(overheads) * 0.95) - 1] * 1000,
        "status_bytes": len(yaml.safe_dump(status or {})),
    }


async def subject(api: Api, which: str, tasks: list[dict[str, Any]]) -> tuple[dict[str, Any], str, float]:
    ns = await new_namespace(api, f"bench-obs-{which}")
    proc: Proc
    op: Operator | None = None
    if which == "limit":
        proc = limit_program("dag_limit", ns)
        proc.start()
        await asyncio.sleep(2)
    else:
        proc = op = Operator("observatory")
        op.start()
        await op.until_ready()
        await asyncio.sleep(1)
    load_ = load()
    cpu_before = cpu_seconds(proc.pid)
    result = await one_run(api, ns, tasks)
    result["cpu"] = cpu_seconds(proc.pid) - cpu_before
    rss = rss_mib(proc.pid)
    if op is not None:
        result["writes"] = await op.writes_by_verb()
        result["reconciles"] = await op.total("reconciles_total")
    proc.stop()
    await delete_namespace(api, ns)
    return result, load_, rss


async def main(n: int, width: int, runs: int) -> None:
    api = await Api.connect()
    tasks = dag(n, width)
    levels = -(-n // width)
    table = Table(
        f"observatory operator vs its limit: {n} tasks in {levels} levels of {width}, 2 dependencies each "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs)"
    )
    try:
        await apply_crd(api, CRD)
        for r in range(runs):
            print(f"== run {r + 1}", flush=True)
            lim, load_lim, _ = await subject(api, "limit", tasks)
            op, load_op, rss = await subject(api, "operator", tasks)
            assert op["phase"] == "Succeeded", op
            table.add(
                f"run {r + 1}: create -> phase Succeeded",
                f"{op['total']:.2f} s",
                f"{lim['total']:.2f} s (load {load_lim})",
                ratio(op["total"], lim["total"]),
                load_op,
            )
            table.add(
                f"run {r + 1}: first pod seen -> last pod Succeeded",
                f"{op['pods']:.2f} s",
                f"{lim['pods']:.2f} s",
                ratio(op["pods"], lim["pods"]),
                load_op,
            )
            table.add(
                f"run {r + 1}: per task, last dependency Succeeded -> pod seen (median / p95)",
                f"{op['median_ms']:.0f} / {op['p95_ms']:.0f} ms",
                f"{lim['median_ms']:.0f} / {lim['p95_ms']:.0f} ms",
                ratio(op["median_ms"], lim["median_ms"]),
                load_op,
            )
            writes = op["writes"]
            by_verb = ", ".join(f"{v:.0f} {k}" for k, v in sorted(writes.items()))
            table.add(
                f"run {r + 1}: operator writes (by verb) and reconciles",
                f"{sum(writes.values()):.0f} ({by_verb}); {op['reconciles']:.0f} reconciles",
                f"{n} pods + 1 status",
                "",
                load_op,
            )
            table.add(
                f"run {r + 1}: CPU seconds during the run",
                f"{op['cpu']:.2f} s",
                f"{lim['cpu']:.2f} s",
                "",
                load_op,
            )
            table.add(
                f"run {r + 1}: operator RSS after the run; status size",
                f"{rss:.0f} MiB; {op['status_bytes']} bytes",
                "",
                "",
                load_op,
            )
        table.print()
    finally:
        await api.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--width", type=int, default=10)
    parser.add_argument("--runs", type=int, default=int(os.environ.get("TROUPE_BENCH_DAG_RUNS", "2")))
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.width, args.runs))
