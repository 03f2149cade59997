"""Pure builders: a Workshop's spec, status and observed children in, the children it should have out.

No clock reads and no API calls: the time comes in as ``now``, and a password is an HMAC of the Workshop's
uid under ``Settings.password_key`` (the chart's per-installation key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from troupe import (
    CREATE_ONLY_ANNOTATION,
    OWNER_ANNOTATION,
    RETAIN_ANNOTATION,
    Children,
    Manifest,
    standard_labels,
)
from troupe_workshop.config import Settings
from troupe_workshop.models import WorkshopSpec
from troupe_workshop.names import Instance, ingress_name
from troupe_workshop.timeline import terminating

RSTUDIO_PORT = 8787
HOME = "/home/rstudio"
RESTARTS_ANNOTATION = "orchestra.io/restarts"
#: A suspend of every R session before the SIGTERM, so participants' work is saved to the home volume.
PRE_STOP = ["/bin/sh", "-c", "rstudio-server suspend-all >/dev/null 2>&1 || true; sleep 5"]


def instances(name: str, spec: WorkshopSpec) -> list[Instance]:
    if spec.participant_names:
        return [Instance(name, p) for p in spec.participant_names]
    if spec.participants:
        return [Instance(name, f"p{i}") for i in range(1, spec.participants + 1)]
    return [Instance(name, None)]


def url(spec: WorkshopSpec, namespace: str, inst: Instance) -> str:
    if spec.ingress.host:
        scheme = "https" if spec.ingress.tls_secret_name else "http"
        return f"{scheme}://{spec.ingress.host}{inst.path}"
    return f"http://{inst.service}.{namespace}.svc:{RSTUDIO_PORT}/"


def password(settings: Settings, uid: str, inst: Instance) -> str:
    digest = hmac.new(settings.password_key, f"{uid}/{inst.name}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


# -- children ------------------------------------------------------------------------------------


def claim(spec: WorkshopSpec, namespace: str, inst: Instance) -> Manifest:
    annotations = {RETAIN_ANNOTATION: "true"} if spec.storage.retain_on_expiry else {}
    pvc: Manifest = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": inst.claim, "namespace": namespace, "labels": inst.selector},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": spec.storage.size}},
        },
    }
    if annotations:
        pvc["metadata"]["annotations"] = annotations
    if spec.storage.storage_class:
        pvc["spec"]["storageClassName"] = spec.storage.storage_class
    return pvc


def secret(settings: Settings, uid: str, namespace: str, inst: Instance) -> Manifest:
    value = base64.b64encode(password(settings, uid, inst).encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": inst.secret,
            "namespace": namespace,
            "labels": inst.selector,
            # The password a participant was given is never replaced, whatever key this process has.
            "annotations": {CREATE_ONLY_ANNOTATION: "true"},
        },
        "type": "Opaque",
        "data": {"user": base64.b64encode(b"rstudio").decode(), "password": value},
    }


def deployment(
    spec: WorkshopSpec, owner: str, namespace: str, inst: Instance, *, replicas: int, restarts: int
) -> Manifest:
    resources = {"cpu": spec.resources.cpu, "memory": spec.resources.memory}
    pod_labels = {**standard_labels("workshop", "Workshop", owner, "rstudio"), **inst.selector}
    pod_annotations = {
        # Pods are observed children too (health), through the same owner annotation.
        OWNER_ANNOTATION: f"Workshop.orchestra.io/{namespace}/{owner}",
        RESTARTS_ANNOTATION: str(restarts),
    }
    probe = {"httpGet": {"path": "/", "port": "http"}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": inst.deployment, "namespace": namespace, "labels": inst.selector},
        "spec": {
            "replicas": replicas,
            # One pod at a time: the home volume is ReadWriteOnce.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": inst.selector},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": pod_annotations},
                "spec": {
                    "terminationGracePeriodSeconds": spec.termination_grace_period_seconds,
                    "containers": [
                        {
                            "name": "rstudio",
                            "image": spec.image,
                            "ports": [{"name": "http", "containerPort": RSTUDIO_PORT, "protocol": "TCP"}],
                            "env": [
                                {
                                    "name": "PASSWORD",
                                    "valueFrom": {"secretKeyRef": {"name": inst.secret, "key": "password"}},
                                },
                                *(
                                    [{"name": "RSTUDIO_WWW_ROOT_PATH", "value": inst.path}]
                                    if inst.participant
                                    else []
                                ),
                            ],
                            "resources": {"requests": resources, "limits": resources},
                            "readinessProbe": {**probe, "periodSeconds": 5, "failureThreshold": 3},
                            "livenessProbe": {
                                **probe,
                                "initialDelaySeconds": 30,
                                "periodSeconds": 20,
                                "failureThreshold": 6,
                            },
                            "lifecycle": {"preStop": {"exec": {"command": PRE_STOP}}},
                            "volumeMounts": [{"name": "home", "mountPath": HOME}],
                        }
                    ],
                    "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": inst.claim}}],
                },
            },
        },
    }


def service(namespace: str, inst: Instance) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": inst.service, "namespace": namespace, "labels": inst.selector},
        "spec": {
            "type": "ClusterIP",
            "selector": inst.selector,
            "ports": [{"name": "http", "port": RSTUDIO_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def ingress(
    spec: WorkshopSpec, settings: Settings, name: str, namespace: str, all_: list[Instance]
) -> Manifest:
    paths = [
        {
            "path": inst.path,
            "pathType": "Prefix",
            "backend": {"service": {"name": inst.service, "port": {"name": "http"}}},
        }
        for inst in all_
    ]
    rule: Manifest = {"http": {"paths": paths}}
    if spec.ingress.host:
        rule["host"] = spec.ingress.host
    manifest: Manifest = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": ingress_name(name), "namespace": namespace},
        "spec": {"ingressClassName": spec.ingress.class_name or settings.ingress_class, "rules": [rule]},
    }
    if spec.ingress.annotations:
        manifest["metadata"]["annotations"] = dict(spec.ingress.annotations)
    if spec.ingress.tls_secret_name:
        manifest["spec"]["tls"] = [{"hosts": [spec.ingress.host], "secretName": spec.ingress.tls_secret_name}]
    return manifest


# -- the whole set --------------------------------------------------------------------------------


def _replicas(observed: Manifest | None) -> int:
    if observed is None:
        return 0
    return int((observed.get("status") or {}).get("replicas") or 0) + int(
        (observed.get("spec") or {}).get("replicas") or 0
    )


def build(
    spec: WorkshopSpec,
    body: Manifest,
    observed: Children,
    settings: Settings,
    now: datetime,
    *,
    deleting: bool = False,
) -> list[Manifest]:
    """Every child the workshop should have now.

    While it runs: per participant a claim, a password Secret, a Deployment and a Service, and one
    Ingress. Teardown (expired, or deleted by hand) goes in steps, each taken once the step before is
    gone from the cluster: the Ingress (access stops), then the Services, then the Deployments are scaled
    to zero (RStudio saves sessions in its grace period), then the Deployments and Secrets go. Retained
    claims stay, released from the Workshop; others go with it.
    """
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    status: dict[str, Any] = body.get("status") or {}
    all_ = instances(name, spec)
    restarts = int(status.get("restarts") or 0)
    claims = [claim(spec, namespace, i) for i in all_]
    secrets_ = [secret(settings, meta.get("uid", ""), namespace, i) for i in all_]
    services = [service(namespace, i) for i in all_]

    def deployments(replicas: int) -> list[Manifest]:
        return [deployment(spec, name, namespace, i, replicas=replicas, restarts=restarts) for i in all_]

    if not terminating(spec, status, now, deleting):
        return [
            *claims,
            *secrets_,
            *deployments(1),
            *services,
            ingress(spec, settings, name, namespace, all_),
        ]
    # Only claims that exist are kept (and released): applying one never made would create it at the end
    # (a workshop deleted before it was provisioned).
    kept = [
        c
        for c in claims
        if spec.storage.retain_on_expiry and observed.named("PersistentVolumeClaim", c["metadata"]["name"])
    ]
    if observed.of_kind("Ingress"):
        return [*kept, *secrets_, *deployments(1), *services]
    if observed.of_kind("Service"):
        return [*kept, *secrets_, *deployments(1)]
    if any(_replicas(observed.named("Deployment", i.deployment)) for i in all_):
        return [*kept, *secrets_, *deployments(0)]
    return kept


def remaining_for_teardown(observed: Children) -> list[str]:
    """The children teardown still waits for (claims never count: they are kept or go with the owner)."""
    return [
        f"{key.kind} {key.name}"
        for key, child in observed.items()
        if key.kind in ("Ingress", "Service", "Deployment", "Secret")
        and not child["metadata"].get("deletionTimestamp")
    ]
