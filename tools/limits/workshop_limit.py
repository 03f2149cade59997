"""The floor for the workshop operator: the same API work, done by the smallest program that can.

    python tools/limits/workshop_limit.py --namespace NS    (runs until SIGTERM/SIGINT; prints a JSON summary)

A watch on the namespace's Workshops; for each new one, its five children at once (home claim, password
Secret, Deployment, Service, Ingress; POST, as the operator's first apply is a create); a watch on the
Deployments and claims; once the Deployment has a ready replica and the claim is Bound, one merge patch of
the Workshop's status to phase Running. No cache beyond two sets of names, no diffing, no retries, no
events, no owner references, no finalizer: what is left is what the API server, the controller-manager,
the scheduler and kwok need to get a Workshop's pod running. ``tools/bench_workshop.py`` runs it beside
the operator, on the same cluster, with the same Workshops.
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

GROUP = "/apis/orchestra.io/v1"


def children(ws: Body) -> list[tuple[str, Body]]:
    """(collection path, manifest) of the five children, the same kinds and sizes as the operator's."""
    name, ns, spec = ws["metadata"]["name"], ws["metadata"]["namespace"], ws["spec"]
    labels = {"orchestra.io/workshop": name, "orchestra.io/participant": "rstudio"}
    meta = {"namespace": ns, "labels": labels}
    res = spec.get("resources") or {"cpu": "1", "memory": "2Gi"}
    size = (spec.get("storage") or {}).get("size", "10Gi")
    container: dict[str, Any] = {
        "name": "rstudio",
        "image": spec.get("image", "rocker/rstudio:latest"),
        "ports": [{"name": "http", "containerPort": 8787}],
        "env": [
            {
                "name": "PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": f"{name}-password", "key": "password"}},
            }
        ],
        "resources": {"requests": res, "limits": res},
        "volumeMounts": [{"name": "home", "mountPath": "/home/rstudio"}],
    }
    pod_spec = {
        "containers": [container],
        "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": f"{name}-home"}}],
    }
    return [
        (
            f"/api/v1/namespaces/{ns}/persistentvolumeclaims",
            {
                "metadata": {"name": f"{name}-home", **meta},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
            },
        ),
        (
            f"/api/v1/namespaces/{ns}/secrets",
            {
                "metadata": {"name": f"{name}-password", **meta},
                "data": {"user": "cnN0dWRpbw==", "password": "c2VjcmV0"},
            },
        ),
        (
            f"/apis/apps/v1/namespaces/{ns}/deployments",
            {
                "metadata": {"name": name, **meta},
                "spec": {
                    "replicas": 1,
                    "strategy": {"type": "Recreate"},
                    "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": pod_spec},
                },
            },
        ),
        (
            f"/api/v1/namespaces/{ns}/services",
            {
                "metadata": {"name": name, **meta},
                "spec": {"selector": labels, "ports": [{"name": "http", "port": 8787, "targetPort": "http"}]},
            },
        ),
        (
            f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
            {
                "metadata": {"name": name, **meta},
                "spec": {
                    "rules": [
                        {
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {"service": {"name": name, "port": {"name": "http"}}},
                                    }
                                ]
                            }
                        }
                    ]
                },
            },
        ),
    ]


class Limit:
    def __init__(self, api: Api, namespace: str) -> None:
        self.api, self.ns = api, namespace
        self.started: set[str] = set()  # Workshops whose children were created
        self.ready_deployments: set[str] = set()
        self.bound_claims: set[str] = set()
        self.done: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def create_children(self, ws: Body) -> None:
        await asyncio.gather(
            *(self.api.request("POST", path, body, ok=(409,)) for path, body in children(ws))
        )

    async def mark_running(self, name: str) -> None:
        await self.api.request(
            "PATCH",
            f"{GROUP}/namespaces/{self.ns}/workshops/{name}/status",
            {"status": {"phase": "Running"}},
            content_type="application/merge-patch+json",
        )

    def check(self, name: str) -> None:
        if (
            name in self.started
            and name not in self.done
            and name in self.ready_deployments
            and f"{name}-home" in self.bound_claims
        ):
            self.done.add(name)
            self.spawn(self.mark_running(name))

    async def workshops(self) -> None:
        async for kind, ws in self.api.list_and_watch(f"{GROUP}/namespaces/{self.ns}/workshops"):
            name = ws["metadata"]["name"]
            if kind == "ADDED" and name not in self.started:
                self.started.add(name)
                self.spawn(self.create_children(ws))

    async def deployments(self) -> None:
        async for _, dep in self.api.list_and_watch(f"/apis/apps/v1/namespaces/{self.ns}/deployments"):
            if (dep.get("status") or {}).get("readyReplicas"):
                self.ready_deployments.add(dep["metadata"]["name"])
                self.check(dep["metadata"]["name"])

    async def claims(self) -> None:
        async for _, pvc in self.api.list_and_watch(f"/api/v1/namespaces/{self.ns}/persistentvolumeclaims"):
            if (pvc.get("status") or {}).get("phase") == "Bound":
                name = pvc["metadata"]["name"]
                self.bound_claims.add(name)
                self.check(name.removesuffix("-home"))


async def main(namespace: str) -> int:
    api = await Api.connect()
    limit = Limit(api, namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watches = [asyncio.create_task(w()) for w in (limit.workshops, limit.deployments, limit.claims)]
    stopped = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopped, *watches], return_when=asyncio.FIRST_COMPLETED)
    for task in [stopped, *watches, *limit.tasks]:
        task.cancel()
    await asyncio.gather(stopped, *watches, *limit.tasks, return_exceptions=True)
    await api.close()
    failed = [t.exception() for t in done if t is not stopped and not t.cancelled() and t.exception()]
    summary = {"workshops": len(limit.started), "running": len(limit.done), "writes": api.writes}
    print(json.dumps({**summary, "error": str(failed[0]) if failed else None}))
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", required=True)
    sys.exit(asyncio.run(main(parser.parse_args().namespace)))
