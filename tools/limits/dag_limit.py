"""The floor for the observatory operator: a DAG run by the smallest watch -> create-pod program.

    python tools/limits/dag_limit.py --namespace NS    (runs until SIGTERM/SIGINT; prints a JSON summary)

A watch on the namespace's Observatories; for each new one, the pods of its tasks without dependencies at
once; a watch on the pods; as soon as a pod is seen Succeeded, the pods of every task whose dependencies
have all succeeded, at once; when every task succeeded, one merge patch of the Observatory's status to
phase Succeeded. The pods are the operator's (same labels, restartPolicy Never, one container). No status
per task, no retries, no failure handling: what is left is the API server's and kwok's share of a DAG.
``tools/bench_observatory.py`` runs it beside the operator, on the same cluster, with the same DAG.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kube import Api, Body

GROUP = "workflow.seventh-horizon.io"


class Run:
    def __init__(self, name: str, tasks: list[dict[str, Any]]) -> None:
        self.name = name
        self.tasks = {t["name"]: t for t in tasks}
        self.created: set[str] = set()
        self.succeeded: set[str] = set()

    def runnable(self) -> list[dict[str, Any]]:
        out = [
            t
            for name, t in self.tasks.items()
            if name not in self.created and all(d in self.succeeded for d in t.get("dependencies", []))
        ]
        self.created.update(t["name"] for t in out)
        return out


class Limit:
    def __init__(self, api: Api, namespace: str) -> None:
        self.api, self.ns = api, namespace
        self.runs: dict[str, Run] = {}
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def pod(self, run: Run, task: dict[str, Any]) -> Body:
        labels = {
            f"{GROUP}/workflow": run.name,
            f"{GROUP}/run": "1",
            f"{GROUP}/task": task["name"],
            f"{GROUP}/attempt": "0",
        }
        container = {"name": "main", "image": task["image"]}
        return {
            "metadata": {"name": f"{run.name}-1-{task['name']}-0", "labels": labels},
            "spec": {"restartPolicy": "Never", "containers": [container]},
        }

    def start(self, run: Run) -> None:
        for task in run.runnable():
            self.spawn(
                self.api.request("POST", f"/api/v1/namespaces/{self.ns}/pods", self.pod(run, task), ok=(409,))
            )

    async def finish(self, run: Run) -> None:
        await self.api.request(
            "PATCH",
            f"/apis/{GROUP}/v1alpha1/namespaces/{self.ns}/observatories/{run.name}/status",
            {"status": {"phase": "Succeeded"}},
            content_type="application/merge-patch+json",
        )

    async def observatories(self) -> None:
        async for kind, obs in self.api.list_and_watch(
            f"/apis/{GROUP}/v1alpha1/namespaces/{self.ns}/observatories"
        ):
            name = obs["metadata"]["name"]
            if kind == "ADDED" and name not in self.runs:
                self.runs[name] = Run(name, obs["spec"]["tasks"])
                self.start(self.runs[name])

    async def pods(self) -> None:
        async for _, pod in self.api.list_and_watch(f"/api/v1/namespaces/{self.ns}/pods"):
            labels = pod["metadata"].get("labels") or {}
            run = self.runs.get(labels.get(f"{GROUP}/workflow", ""))
            task = labels.get(f"{GROUP}/task")
            if run is None or task is None or (pod.get("status") or {}).get("phase") != "Succeeded":
                continue
            if task not in run.succeeded:
                run.succeeded.add(task)
                self.start(run)
                if len(run.succeeded) == len(run.tasks):
                    self.spawn(self.finish(run))


async def main(namespace: str) -> int:
    api = await Api.connect()
    limit = Limit(api, namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watches = [asyncio.create_task(w()) for w in (limit.observatories, limit.pods)]
    stopped = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopped, *watches], return_when=asyncio.FIRST_COMPLETED)
    for task in [stopped, *watches, *limit.tasks]:
        task.cancel()
    await asyncio.gather(stopped, *watches, *limit.tasks, return_exceptions=True)
    await api.close()
    failed = [t.exception() for t in done if t is not stopped and not t.cancelled() and t.exception()]
    print(
        json.dumps(
            {"runs": len(limit.runs), "writes": api.writes, "error": str(failed[0]) if failed else None}
        )
    )
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", required=True)
    sys.exit(asyncio.run(main(parser.parse_args().namespace)))
