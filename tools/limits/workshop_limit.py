"""The floor for the workshop operator: the same API work, done by the smallest program that can.

    python tools/limits/workshop_limit.py --namespace NS    (runs until SIGTERM/SIGINT; prints a JSON summary)

A watch on the namespace's Workshops; for each new one, its five children at once (home claim, password
Secret, Deployment, Service, Ingress; POST, as the operator's first apply is a create), the same objects
the operator applies (owner references included); a watch on the Deployments and claims; once the
Deployment has a ready replica and the claim is Bound, one merge patch of the Workshop's status, the
operator's Running status. No cache beyond the Workshops and sets of names, no diffing, no retries, no
events, no finalizer, no `Creating` status on the way: what is left is what the API server, the
controller-manager, the scheduler and kwok need to get a Workshop's pod running and reported.
``tools/bench_workshop.py`` runs it beside the operator, on the same cluster, with the same Workshops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kube import Api, Body

GROUP = "/apis/orchestra.io/v1"
PASSWORD = "UmdvODdQSFpPY3EyX2ZVWTl2NjZVOTct"  # the length of the operator's generated ones
SUSPEND = "rstudio-server suspend-all"


def children(ws: Body) -> list[tuple[str, Body]]:
    """(collection path, manifest) of the five children: the objects the operator applies, field for field
    (labels, owner annotations and reference, probes, pre-stop hook), so both runs cost the API server,
    etcd and every controller watching them the same. ``tools/tests/test_limits.py`` compares the two."""
    meta_, spec = ws["metadata"], ws["spec"]
    name, ns = meta_["name"], meta_["namespace"]
    selector = {"orchestra.io/participant": "rstudio", "orchestra.io/workshop": name}
    standard = {
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "troupe-workshop",
        "app.kubernetes.io/name": "workshop",
        "app.kubernetes.io/part-of": "troupe",
    }
    owner = f"Workshop.orchestra.io/{ns}/{name}"
    annotations = {"troupe.dev/owner": owner, "troupe.dev/owner-uid": meta_["uid"]}
    reference = {
        "apiVersion": "orchestra.io/v1",
        "blockOwnerDeletion": True,
        "controller": True,
        "kind": "Workshop",
        "name": name,
        "uid": meta_["uid"],
    }

    def meta(child: str, labels: dict[str, str] = selector, extra: dict[str, str] | None = None) -> Body:
        return {
            "annotations": {**annotations, **(extra or {})},
            "labels": {**standard, **labels},
            "name": child,
            "namespace": ns,
            "ownerReferences": [dict(reference)],
        }

    res = spec.get("resources") or {"cpu": "1", "memory": "2Gi"}
    size = (spec.get("storage") or {}).get("size", "10Gi")
    probe = {"httpGet": {"path": "/", "port": "http"}}
    container: dict[str, Any] = {
        "env": [
            {
                "name": "PASSWORD",
                "valueFrom": {"secretKeyRef": {"key": "password", "name": f"{name}-password"}},
            }
        ],
        "image": spec.get("image", "rocker/rstudio:latest"),
        "lifecycle": {
            "preStop": {"exec": {"command": ["/bin/sh", "-c", f"{SUSPEND} >/dev/null 2>&1 || true; sleep 5"]}}
        },
        "livenessProbe": {**probe, "failureThreshold": 6, "initialDelaySeconds": 30, "periodSeconds": 20},
        "name": "rstudio",
        "ports": [{"containerPort": 8787, "name": "http", "protocol": "TCP"}],
        "readinessProbe": {**probe, "failureThreshold": 3, "periodSeconds": 5},
        "resources": {"limits": res, "requests": res},
        "volumeMounts": [{"mountPath": "/home/rstudio", "name": "home"}],
    }
    claim = meta(f"{name}-home", extra={"troupe.dev/retain": "true"})
    claim["ownerReferences"] = []  # a retained claim: no reference, as the operator applies it
    host = (spec.get("ingress") or {}).get("host")
    return [
        (
            f"/api/v1/namespaces/{ns}/persistentvolumeclaims",
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": claim,
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
            },
        ),
        (
            f"/api/v1/namespaces/{ns}/secrets",
            {
                "apiVersion": "v1",
                "data": {"password": PASSWORD, "user": "cnN0dWRpbw=="},
                "kind": "Secret",
                "metadata": meta(f"{name}-password", extra={"troupe.dev/create-only": "true"}),
                "type": "Opaque",
            },
        ),
        (
            f"/apis/apps/v1/namespaces/{ns}/deployments",
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": meta(name),
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": selector},
                    "strategy": {"type": "Recreate"},
                    "template": {
                        "metadata": {
                            "annotations": {"orchestra.io/restarts": "0", "troupe.dev/owner": owner},
                            "labels": {**standard, "app.kubernetes.io/component": "rstudio", **selector},
                        },
                        "spec": {
                            "containers": [container],
                            "terminationGracePeriodSeconds": 60,
                            "volumes": [
                                {"name": "home", "persistentVolumeClaim": {"claimName": f"{name}-home"}}
                            ],
                        },
                    },
                },
            },
        ),
        (
            f"/api/v1/namespaces/{ns}/services",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta(name),
                "spec": {
                    "ports": [{"name": "http", "port": 8787, "protocol": "TCP", "targetPort": "http"}],
                    "selector": selector,
                    "type": "ClusterIP",
                },
            },
        ),
        (
            f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": meta(name, {}),
                "spec": {
                    "ingressClassName": "traefik",
                    "rules": [
                        {
                            "host": host,
                            "http": {
                                "paths": [
                                    {
                                        "backend": {"service": {"name": name, "port": {"name": "http"}}},
                                        "path": "/",
                                        "pathType": "Prefix",
                                    }
                                ]
                            },
                        }
                    ],
                },
            },
        ),
    ]


def running_status(ws: Body, now: datetime) -> Body:
    """The status the operator writes once a Workshop runs, in one merge patch (the operator's fields)."""
    meta, spec = ws["metadata"], ws["spec"]
    name, generation = meta["name"], meta.get("generation", 1)
    url = f"http://{spec['ingress']['host']}/"
    started = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    expires = (now + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def condition(type_: str, status: str, reason: str, message: str) -> Body:
        return {
            "lastTransitionTime": started,
            "message": message,
            "observedGeneration": generation,
            "reason": reason,
            "status": status,
            "type": type_,
        }

    return {
        "conditions": [
            condition("Ready", "True", "Running", f"open until {expires}"),
            condition("Degraded", "False", "Healthy", ""),
            condition("ExpiringSoon", "False", "NotExpiring", ""),
        ],
        "createdAt": meta.get("creationTimestamp"),
        "expiresAt": expires,
        "observedGeneration": generation,
        "participants": [
            {"name": "rstudio", "passwordSecret": f"{name}-password", "phase": "Running", "url": url}
        ],
        "passwordSecret": f"{name}-password",
        "phase": "Running",
        "startedAt": started,
        "url": url,
    }


class Limit:
    def __init__(self, api: Api, namespace: str) -> None:
        self.api, self.ns = api, namespace
        self.started: set[str] = set()  # Workshops whose children were created
        self.ready_deployments: set[str] = set()
        self.bound_claims: set[str] = set()
        self.done: set[str] = set()
        self.bodies: dict[str, Body] = {}
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
            {"status": running_status(self.bodies[name], datetime.now(UTC))},
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
                self.bodies[name] = ws
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
