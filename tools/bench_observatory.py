"""Benchmark the observatory operator: a 100-task DAG on the local cluster; total time and overhead per task.

    KUBECONFIG=.troupe/kubeconfig uv run --frozen python tools/bench_observatory.py [--tasks 100] [--width 10]

The DAG has ``tasks / width`` levels of ``width`` tasks; each task depends on two tasks of the level
before. kwok finishes pods at once, so the time is all the operator's and the API server's. The script
watches the pods itself (one clock for everything): a task's overhead is the time from the last of its
dependencies being seen Succeeded (or the workflow's creation, for the first level) to its pod being
seen. The operator runs in a subprocess with the admin kubeconfig, standalone, on a fresh namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CRD = ROOT / "charts" / "observatory-operator" / "crds" / "observatory.yaml"


def kubectl_path() -> str:
    out = subprocess.run(
        ["bash", str(ROOT / "tools" / "cluster" / "build.sh"), "--env"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)["KUBECTL"]


KUBECTL = os.environ.get("TROUPE_KUBECTL") or kubectl_path()


def kubectl(*args: str, input: str | None = None) -> str:
    return subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True, check=True).stdout


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


class PodWatch(threading.Thread):
    """``kubectl get pods --watch``: when each pod was first seen, and first seen Succeeded."""

    def __init__(self, namespace: str) -> None:
        super().__init__(daemon=True)
        self.seen: dict[str, float] = {}
        self.succeeded: dict[str, float] = {}
        self.proc = subprocess.Popen(
            [KUBECTL, "get", "pods", "-n", namespace, "--watch", "-o", "json"],
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self) -> None:
        decoder = json.JSONDecoder()
        buffer = ""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            buffer += line
            try:
                obj, end = decoder.raw_decode(buffer.lstrip())
            except json.JSONDecodeError:
                continue
            buffer = buffer.lstrip()[end:]
            now = time.monotonic()
            task = obj["metadata"].get("labels", {}).get("workflow.seventh-horizon.io/task")
            if task is None:
                continue
            self.seen.setdefault(task, now)
            if obj.get("status", {}).get("phase") == "Succeeded":
                self.succeeded.setdefault(task, now)

    def stop(self) -> None:
        self.proc.terminate()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--width", type=int, default=10)
    parser.add_argument("--max-concurrent", type=int, default=0, help="0: unlimited")
    args = parser.parse_args()

    namespace = f"bench-observatory-{int(time.time())}"
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kubectl("wait", "--for=condition=Established", "crd/observatories.workflow.seventh-horizon.io")
    kubectl("create", "namespace", namespace)
    uv = os.environ.get("UV", "uv")
    log = open(ROOT / ".troupe" / "bench-observatory.log", "w")  # noqa: SIM115 -- lives as long as the operator
    operator = subprocess.Popen(
        [uv, "run", "--frozen", "troupe", "run", "observatory", "--namespace", namespace, "--standalone",
         "--metrics-port", "0"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    watch = PodWatch(namespace)
    watch.start()
    try:
        time.sleep(6)  # the operator's start-up: imports, login, initial listings
        tasks = dag(args.tasks, args.width)
        spec: dict[str, Any] = {"tasks": tasks}
        if args.max_concurrent:
            spec["maxConcurrent"] = args.max_concurrent
        body = {
            "apiVersion": "workflow.seventh-horizon.io/v1alpha1",
            "kind": "Observatory",
            "metadata": {"name": "bench", "namespace": namespace},
            "spec": spec,
        }
        started = time.monotonic()
        kubectl("apply", "-f", "-", input=yaml.safe_dump(body))
        while True:
            phase = kubectl("get", "obs", "bench", "-n", namespace, "-o", "jsonpath={.status.phase}")
            if phase in ("Succeeded", "Failed"):
                break
            if time.monotonic() - started > 600:
                print("timed out after 600s", file=sys.stderr)
                return 1
            time.sleep(0.2)
        total = time.monotonic() - started
        time.sleep(1)
        status = json.loads(kubectl("get", "obs", "bench", "-n", namespace, "-o", "json"))["status"]
        size = len(json.dumps(status, separators=(",", ":")))
        overheads = []
        for task in tasks:
            name = task["name"]
            ready = max((watch.succeeded[d] for d in task.get("dependencies", [])), default=started)
            overheads.append(watch.seen[name] - ready)
        levels = -(-args.tasks // args.width)
        print(f"tasks: {args.tasks} in {levels} levels of {args.width} (2 dependencies each), phase {phase}")
        print(f"total time: {total:.2f}s ({total / levels:.3f}s per level)")
        ms = sorted(o * 1000 for o in overheads)
        print(
            "scheduling overhead per task (last dependency seen Succeeded -> pod seen): "
            f"mean {statistics.mean(ms):.0f} ms, median {statistics.median(ms):.0f} ms, "
            f"p95 {ms[int(len(ms) * 0.95) - 1]:.0f} ms, max {ms[-1]:.0f} ms"
        )
        print(f"status size: {size} bytes")
        return 0
    finally:
        watch.stop()
        operator.terminate()
        operator.wait(10)
        log.close()
        kubectl("delete", "namespace", namespace, "--wait=false")


if __name__ == "__main__":
    sys.exit(main())
