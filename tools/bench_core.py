"""Benchmark the core's reconcile loop against the real local API server; prints figures, asserts nothing.

    uv run python tools/bench_core.py [--objects 200]

Runs the example operator in-process, creates N Greetings at once, and reports: the time until all are
Ready, reconciles and API writes per object, a forced resync of every object (it must write nothing: the
zero-write steady state), and the operator process's memory. Needs the local cluster (`make cluster-up`)
or KUBECONFIG pointing at one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import os
import resource
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from troupe.crd import build_crd
from troupe.engine.client import Kube
from troupe.engine.runtime import HandlerRegistry, RunSettings, run
from troupe.plugins import get_plugin_manager
from troupe_example import greeting

API = "example.troupe.dev/v1alpha1"
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def total(counter: object) -> float:
    return sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))  # type: ignore[attr-defined]


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def until(probe: Callable[[], Awaitable[bool] | bool], interval: float = 0.05) -> None:
    while True:
        result = probe()
        if await result if inspect.isawaitable(result) else result:
            return
        await asyncio.sleep(interval)


async def create(kube: Kube, namespace: str, i: int) -> None:
    body = {"apiVersion": API, "kind": "Greeting", "metadata": {"name": f"g{i}"}, "spec": {"name": f"n{i}"}}
    await kube.request("POST", f"/apis/{API}/namespaces/{namespace}/greetings", body=body)


async def gone(kube: Kube, namespace: str) -> bool:
    got = await kube.request("GET", f"/apis/{API}/namespaces/{namespace}/greetings")
    return not got["items"]


async def all_ready(kube: Kube, namespace: str, objects: int) -> bool:
    got = await kube.request("GET", f"/apis/{API}/namespaces/{namespace}/greetings")
    return sum(1 for o in got["items"] if (o.get("status") or {}).get("phase") == "Ready") >= objects


async def bench(objects: int) -> None:
    kube = await Kube.connect(field_manager="troupe-bench")
    crd = build_crd(greeting.GREETING)
    await kube.request(
        "PATCH",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}",
        body=crd,
        query={"fieldManager": "troupe-bench", "force": "true"},
        content_type="application/apply-patch+yaml",
    )
    namespace = f"bench-{secrets.token_hex(3)}"
    await kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}})
    await asyncio.sleep(1)  # the CRD is served a moment after it is Established
    rss_before = rss_mib()
    stop = asyncio.Event()
    started: list[HandlerRegistry] = []
    settings = RunSettings(
        operators=["example"], namespaces=[namespace], standalone=True, metrics_port=free_port()
    )
    task = asyncio.create_task(run(get_plugin_manager(), settings, stop_flag=stop, ready=started.append))
    try:
        await until(lambda: bool(started))
        registry = started[0]
        metrics = registry.metrics["example"]
        await asyncio.sleep(1)
        t0 = time.perf_counter()
        for i in range(objects):
            body = {
                "apiVersion": API,
                "kind": "Greeting",
                "metadata": {"name": f"g{i}"},
                "spec": {"name": f"n{i}"},
            }
            await kube.request("POST", f"/apis/{API}/namespaces/{namespace}/greetings", body=body)
        created = time.perf_counter() - t0
        await until(lambda: all_ready(kube, namespace, objects), interval=0.2)
        converged = time.perf_counter() - t0
        await asyncio.sleep(2)
        writes, reconciles = total(metrics.writes), total(metrics.reconciles)
        t1 = time.perf_counter()
        for key, _ in registry.reconciler.objects.items():
            registry.queue.enqueue(key)
        before = total(metrics.reconciles)
        await until(lambda: total(metrics.reconciles) >= before + objects)
        resync = time.perf_counter() - t1
        resync_writes = total(metrics.writes) - writes
        print(f"objects                         {objects}")
        print(f"create requests (client side)   {created:.2f} s")
        print(f"all Ready after                 {converged:.2f} s  ({objects / converged:.0f} objects/s)")
        print(f"  of which after the last create {converged - created:.2f} s")
        print(f"reconciles per object           {reconciles / objects:.2f}")
        print(f"API writes per object           {writes / objects:.2f}  (child apply, status, event)")
        print(f"forced resync of every object   {resync:.2f} s, {resync_writes:.0f} writes")
        print(
            f"process peak RSS                {rss_mib():.0f} MiB (bench + operator; {rss_before:.0f} before)"
        )
    finally:
        # While the operator still runs: the Greetings carry its finalizer, and only it removes them.
        await kube.request("DELETE", f"/api/v1/namespaces/{namespace}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until(lambda: gone(kube, namespace), interval=0.5), 60)
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, 30)
        await kube.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("KUBECONFIG", str(ROOT / ".troupe" / "kubeconfig"))
    asyncio.run(bench(args.objects))


if __name__ == "__main__":
    main()
