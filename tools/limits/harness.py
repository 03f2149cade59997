"""What the benchmarks share: the operator or a limit program as a subprocess, its metrics and memory, the
machine's load, a namespace of its own, and the table they print (figure, operator, limit, ratio, load)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from kube import ROOT, Api
from prometheus_client.parser import text_string_to_metric_families

UV = os.environ.get("UV", "uv")
LOGS = ROOT / ".troupe"


def load() -> str:
    """The machine's load averages (1, 5, 15 min), as `uptime` shows them: the machine is shared."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                ppid = int(Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _process_cpu(pid: int | str) -> float:
    """CPU seconds (user + system) of one process so far; 0 for one that is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of every process under ``pid`` so far: the operator's python."""
    return sum(_process_cpu(p) for p in _descendants(pid))


CLUSTER = ("etcd", "kube-apiserver", "kube-controller", "kube-scheduler", "kwok")  # /proc/*/comm (15 chars)


def cluster_cpu() -> dict[str, float]:
    """CPU seconds so far of the local cluster's processes, by name: on a machine of 2 cores the burst is
    bound by everyone's CPU, so what a client costs the API server and etcd counts as much as its own."""
    out = dict.fromkeys(CLUSTER, 0.0)
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                comm = Path(f"/proc/{entry.name}/comm").read_text().strip()
                if comm in out:
                    out[comm] += _process_cpu(entry.name)
    return out


def cpu_spent(before: dict[str, float]) -> dict[str, float]:
    """The cluster's CPU seconds by process since ``before`` (a `cluster_cpu()`)."""
    return {name: t - before[name] for name, t in cluster_cpu().items()}


def rss_mib(pid: int) -> float:
    """Resident memory of the largest process under ``pid``: the operator's python, not `uv run` itself."""
    best = 0
    for p in _descendants(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    best = max(best, int(line.split()[1]))
    return best / 1024


@dataclass
class Proc:
    """A subprocess in its own process group (`uv run` and the python under it stop together)."""

    argv: list[str]
    log_name: str
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[str] | None = None
    started: float = 0.0

    def start(self) -> None:
        LOGS.mkdir(exist_ok=True)
        log = open(LOGS / self.log_name, "w")  # noqa: SIM115 -- closed when the process ends
        self.started = time.perf_counter()
        self.popen = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        log.close()

    def stop(self, timeout: float = 20) -> str:
        """SIGTERM, SIGKILL after ``timeout``; its standard output."""
        assert self.popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            out, _ = self.popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            out, _ = self.popen.communicate()
        return out or ""

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid


class Operator(Proc):
    """`uv run troupe run <operator> --all-namespaces --standalone`, metrics on a port of its own."""

    def __init__(self, operator: str, env: dict[str, str] | None = None) -> None:
        self.operator = operator
        self.port = free_port()
        argv = [
            UV,
            "run",
            "--frozen",
            "troupe",
            "run",
            operator,
            "--all-namespaces",
            "--standalone",
            "--metrics-port",
            str(self.port),
        ]
        super().__init__(argv, f"bench-{operator}.log", env or {})

    async def get(self, path: str) -> tuple[int, str]:
        try:
            async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{self.port}{path}") as r:
                return r.status, await r.text()
        except aiohttp.ClientError:
            return 0, ""

    async def metrics(self) -> dict[str, float]:
        """``name{label=value,...}`` -> value, for this operator's own metrics."""
        _, text = await self.get("/metrics")
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}"] = sample.value
        return out

    async def total(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples matching ``labels`` (e.g. api_writes_total, verb="apply")."""
        full = f"troupe_{self.operator}_{name}"
        out = 0.0
        for key, value in (await self.metrics()).items():
            metric, _, rest = key.partition("{")
            have = dict(kv.split("=", 1) for kv in rest.rstrip("}").split(",") if kv)
            if metric == full and all(have.get(k) == v for k, v in labels.items()):
                out += value
        return out

    async def writes_by_verb(self) -> dict[str, float]:
        prefix = f"troupe_{self.operator}_api_writes_total{{verb="
        return {k[len(prefix) : -1]: v for k, v in (await self.metrics()).items() if k.startswith(prefix)}

    async def enqueues(self) -> dict[str, float]:
        """Requests for a reconcile by ``reason/outcome`` (object/run, child/rerun, object/ignored...)."""
        prefix = f"troupe_{self.operator}_enqueues_total{{"
        out: dict[str, float] = {}
        for key, value in (await self.metrics()).items():
            if key.startswith(prefix):
                labels = dict(kv.split("=", 1) for kv in key[len(prefix) : -1].split(","))
                out[f"{labels.get('reason')}/{labels.get('outcome')}"] = value
        return out

    async def until_ready(self, within: float = 60) -> float:
        """Seconds from the start until /readyz answers 200."""
        deadline = time.perf_counter() + within
        while time.perf_counter() < deadline:
            if (await self.get("/readyz"))[0] == 200:
                return time.perf_counter() - self.started
            assert self.popen is not None
            if self.popen.poll() is not None:
                sys.exit(f"the operator exited with {self.popen.returncode}; see {LOGS / self.log_name}")
            await asyncio.sleep(0.05)
        sys.exit(f"the operator was not ready within {within:g}s; see {LOGS / self.log_name}")


def limit_program(name: str, namespace: str) -> Proc:
    """A limit program of tools/limits/, run by the same interpreter as the benchmark."""
    path = Path(__file__).resolve().parent / f"{name}.py"
    return Proc([sys.executable, str(path), "--namespace", namespace], f"bench-{name}.log")


async def apply_crd(api: Api, path: Path) -> None:
    """Install the CRD at ``path`` and return once its kind is served: Established is not enough, since API
    discovery serves the new kind a moment later (a list right after can be a 404)."""
    crd = yaml.safe_load(path.read_text())
    name = crd["metadata"]["name"]
    await api.request(
        "PATCH",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
        crd,
        content_type="application/apply-patch+yaml",
        params={"fieldManager": "troupe-bench", "force": "true"},
    )
    group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
    version = next(v["name"] for v in crd["spec"]["versions"] if v.get("storage"))
    while True:
        url = f"/apis/{group}/{version}/{plural}"
        listing = await api.request("GET", url, params={"limit": "1"}, ok=(404,))
        if listing.get("kind") != "Status":
            return
        await asyncio.sleep(0.2)


async def new_namespace(api: Api, prefix: str) -> str:
    name = f"{prefix}-{secrets.token_hex(3)}"
    await api.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    # the namespace's default ServiceAccount: pods are refused (admission) until it exists
    accounts = f"/api/v1/namespaces/{name}/serviceaccounts"
    while not (await api.request("GET", accounts, ok=(404,))).get("items"):  # noqa: ASYNC110 -- polls the API
        await asyncio.sleep(0.2)
    return name


async def delete_namespace(api: Api, name: str, strip: Sequence[str] = (), within: float = 300) -> float:
    """Delete the namespace and wait until it is gone; first remove the finalizers of the bench's own
    objects listed in ``strip`` (collection paths), which nobody runs to remove once the operator stopped."""
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(20)
    for path in strip:
        items = (await api.request("GET", path, ok=(404,))).get("items") or []

        async def unfinalize(obj: dict[str, Any], path: str = path) -> None:
            if obj["metadata"].get("finalizers"):
                async with sem:
                    await api.request(
                        "PATCH",
                        f"{path}/{obj['metadata']['name']}",
                        {"metadata": {"finalizers": None}},
                        content_type="application/merge-patch+json",
                        ok=(404,),
                    )

        await asyncio.gather(*(unfinalize(o) for o in items))
    await api.request("DELETE", f"/api/v1/namespaces/{name}", ok=(404,))
    while time.perf_counter() - t0 < within:
        got = await api.request("GET", f"/api/v1/namespaces/{name}", ok=(404,))
        if got.get("kind") != "Namespace":
            return time.perf_counter() - t0
        await asyncio.sleep(1)
    print(f"  (namespace {name} still terminating after {within:g}s; left to the cluster)")
    return within


class Table:
    """Rows of figure | operator | limit | ratio | load, printed as a Markdown table."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.rows: list[tuple[str, str, str, str, str]] = []

    def add(self, figure: str, op: str, limit: str = "-", ratio: str = "-", load_: str = "") -> None:
        self.rows.append((figure, op, limit, ratio, load_ or load()))
        print(f"  {figure}: {op}  |  limit {limit}  |  ratio {ratio}  |  load {load_ or load()}", flush=True)

    def print(self) -> None:
        print(f"\n### {self.title}\n")
        print("| figure | operator | limit, same run | ratio | load (1/5/15 min) |")
        print("|---|---|---|---|---|")
        for row in self.rows:
            print("| " + " | ".join(row) + " |")


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"
