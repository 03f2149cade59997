"""The workshop's pure builders: defaults, every optional field, teardown steps, passwords."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from troupe import CREATE_ONLY_ANNOTATION, OWNER_ANNOTATION, RETAIN_ANNOTATION, ChildKey, Children
from troupe_workshop.builders import build, instances, remaining_for_teardown
from troupe_workshop.config import Settings
from troupe_workshop.models import WorkshopSpec

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SETTINGS = Settings(ingress_class="traefik", password_key=b"k" * 32)


def body(status: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "orchestra.io/v1",
        "kind": "Workshop",
        "metadata": {"name": "intro", "namespace": "class", "uid": "uid-1", **meta},
        "status": status or {},
    }


def by_kind(manifests: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for m in manifests:
        out.setdefault(m["kind"], []).append(m)
    return out


def observed(*objs: dict[str, Any]) -> Children:
    return Children({ChildKey.of(o): o for o in objs})


def test_defaults_build_one_instance_from_the_seed() -> None:
    kids = by_kind(build(WorkshopSpec(), body(), Children(), SETTINGS, NOW))
    assert sorted(kids) == ["Deployment", "Ingress", "PersistentVolumeClaim", "Secret", "Service"]
    (pvc,) = kids["PersistentVolumeClaim"]
    assert pvc["metadata"]["name"] == "intro-home"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert "storageClassName" not in pvc["spec"]
    assert pvc["metadata"]["annotations"] == {RETAIN_ANNOTATION: "true"}  # kept by default
    (dep,) = kids["Deployment"]
    assert dep["metadata"]["name"] == "intro" and dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == "rocker/rstudio:latest"
    assert c["ports"] == [{"name": "http", "containerPort": 8787, "protocol": "TCP"}]
    assert c["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    }
    assert (
        c["readinessProbe"]["httpGet"]["port"] == "http" and c["livenessProbe"]["httpGet"]["port"] == "http"
    )
    assert c["lifecycle"]["preStop"]["exec"]["command"][-1].startswith("rstudio-server suspend-all")
    assert c["volumeMounts"] == [{"name": "home", "mountPath": "/home/rstudio"}]
    assert pod["volumes"] == [{"name": "home", "persistentVolumeClaim": {"claimName": "intro-home"}}]
    assert pod["terminationGracePeriodSeconds"] == 60
    assert c["env"] == [
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "intro-password", "key": "password"}}}
    ]
    template = dep["spec"]["template"]["metadata"]
    assert template["annotations"][OWNER_ANNOTATION] == "Workshop.orchestra.io/class/intro"
    assert template["labels"]["app.kubernetes.io/managed-by"] == "troupe-workshop"
    assert dep["spec"]["selector"]["matchLabels"].items() <= template["labels"].items()
    (svc,) = kids["Service"]
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["port"] == 8787
    (ing,) = kids["Ingress"]
    assert ing["spec"]["ingressClassName"] == "traefik"
    assert ing["spec"]["rules"] == [
        {
            "http": {
                "paths": [
                    {
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": {"service": {"name": "intro", "port": {"name": "http"}}},
                    }
                ]
            }
        }
    ]
    assert "tls" not in ing["spec"] and "annotations" not in ing["metadata"]


def test_every_optional_field_reaches_its_child() -> None:
    spec = WorkshopSpec.model_validate(
        {
            "image": "rocker/rstudio:4.4.1",
            "resources": {"cpu": "500m", "memory": "1Gi"},
            "storage": {"size": "1Gi", "storageClass": "fast", "retainOnExpiry": False},
            "ingress": {
                "host": "r.example.org",
                "annotations": {"traefik.ingress.kubernetes.io/router.tls": "true"},
                "className": "nginx",
                "tlsSecretName": "r-cert",
            },
            "terminationGracePeriodSeconds": 120,
        }
    )
    kids = by_kind(build(spec, body(), Children(), SETTINGS, NOW))
    (pvc,) = kids["PersistentVolumeClaim"]
    assert pvc["spec"]["storageClassName"] == "fast" and "annotations" not in pvc["metadata"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "1Gi"
    pod = kids["Deployment"][0]["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "rocker/rstudio:4.4.1"
    assert pod["containers"][0]["resources"]["limits"] == {"cpu": "500m", "memory": "1Gi"}
    assert pod["terminationGracePeriodSeconds"] == 120
    (ing,) = kids["Ingress"]
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["spec"]["rules"][0]["host"] == "r.example.org"
    assert ing["spec"]["tls"] == [{"hosts": ["r.example.org"], "secretName": "r-cert"}]
    assert ing["metadata"]["annotations"] == {"traefik.ingress.kubernetes.io/router.tls": "true"}


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ({"participants": 2}, ["p1", "p2"]),
        ({"participantNames": ["ada", "grace"]}, ["ada", "grace"]),
    ],
)
def test_participants_get_one_instance_each_behind_one_host(spec: dict[str, Any], names: list[str]) -> None:
    parsed = WorkshopSpec.model_validate({**spec, "ingress": {"host": "r.example.org"}})
    assert [i.name for i in instances("intro", parsed)] == names
    kids = by_kind(build(parsed, body(), Children(), SETTINGS, NOW))
    for kind in ("Deployment", "Service", "Secret", "PersistentVolumeClaim"):
        assert len(kids[kind]) == 2, kind
    assert [d["metadata"]["name"] for d in kids["Deployment"]] == [f"intro--{n}" for n in names]
    assert [p["metadata"]["name"] for p in kids["PersistentVolumeClaim"]] == [
        f"intro--{n}-home" for n in names
    ]
    (ing,) = kids["Ingress"]
    paths = ing["spec"]["rules"][0]["http"]["paths"]
    assert [(p["path"], p["backend"]["service"]["name"]) for p in paths] == [
        (f"/{n}/", f"intro--{n}") for n in names
    ]
    env = kids["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "RSTUDIO_WWW_ROOT_PATH", "value": f"/{names[0]}/"} in env
    selectors = {tuple(sorted(s["spec"]["selector"].items())) for s in kids["Service"]}
    assert len(selectors) == 2  # each Service reaches only its participant's pod


def test_password_is_derived_from_the_key_and_never_replaced() -> None:
    first = by_kind(build(WorkshopSpec(), body(), Children(), SETTINGS, NOW))["Secret"][0]
    password = base64.b64decode(first["data"]["password"]).decode()
    assert len(password) == 24 and base64.b64decode(first["data"]["user"]) == b"rstudio"
    again = by_kind(build(WorkshopSpec(), body(), Children(), SETTINGS, NOW))["Secret"][0]
    assert again == first  # pure: same inputs, same password
    other_key = Settings(password_key=b"x" * 32)
    other = by_kind(build(WorkshopSpec(), body(), Children(), other_key, NOW))["Secret"][0]
    assert other["data"]["password"] != first["data"]["password"]
    # another process's key must not rotate a password already given out: the core creates, never updates
    assert first["metadata"]["annotations"] == {CREATE_ONLY_ANNOTATION: "true"}


def test_restarts_roll_the_pods_through_a_template_annotation() -> None:
    dep = by_kind(build(WorkshopSpec(), body({"restarts": 2}), Children(), SETTINGS, NOW))["Deployment"][0]
    assert dep["spec"]["template"]["metadata"]["annotations"]["orchestra.io/restarts"] == "2"


def _live(spec: WorkshopSpec) -> list[dict[str, Any]]:
    kids = build(spec, body(), Children(), SETTINGS, NOW)
    for k in kids:
        if k["kind"] == "Deployment":
            k["status"] = {"replicas": 1, "readyReplicas": 1}
    return kids


@pytest.mark.parametrize("retain", [True, False])
def test_teardown_goes_ingress_then_service_then_scale_down_then_the_rest(retain: bool) -> None:
    spec = WorkshopSpec.model_validate({"duration": "1h", "storage": {"retainOnExpiry": retain}})
    expired = body({"startedAt": "2026-11-24T07:00:00Z"})
    current = _live(spec)

    def step() -> set[str]:
        nonlocal current
        desired = build(spec, expired, observed(*current), SETTINGS, NOW)
        names = {(d["kind"], d["metadata"]["name"]) for d in desired}
        # what the core does: apply the desired, prune what is left out (claims are never pruned)
        current = [d for d in desired] + [
            c
            for c in current
            if c["kind"] == "PersistentVolumeClaim" and (c["kind"], c["metadata"]["name"]) not in names
        ]
        return {d["kind"] for d in desired}

    assert step() == {"PersistentVolumeClaim", "Secret", "Deployment", "Service"} - (
        {"PersistentVolumeClaim"} if not retain else set()
    )
    kept = {"PersistentVolumeClaim"} if retain else set()
    assert step() == {"Secret", "Deployment"} | kept  # the Services went after the Ingress
    assert next(c for c in current if c["kind"] == "Deployment")["spec"]["replicas"] == 1
    assert step() == {"Secret", "Deployment"} | kept  # then the Deployment is scaled to zero ...
    dep = next(c for c in current if c["kind"] == "Deployment")
    assert dep["spec"]["replicas"] == 0
    dep["status"] = {"replicas": 1}  # ... and stays while its pod takes its grace period
    assert "Deployment" in step()
    next(c for c in current if c["kind"] == "Deployment")["status"] = {}
    assert step() == kept
    assert remaining_for_teardown(observed(*current)) == []


def test_deleting_by_hand_tears_down_like_expiry() -> None:
    spec = WorkshopSpec()
    desired = build(spec, body(), observed(*_live(spec)), SETTINGS, NOW, deleting=True)
    assert "Ingress" not in {d["kind"] for d in desired}
    assert "Service" in {d["kind"] for d in desired}


def test_not_yet_expired_is_not_torn_down() -> None:
    spec = WorkshopSpec.model_validate({"duration": "4h"})
    started = body({"startedAt": (NOW - timedelta(hours=3, minutes=59)).strftime("%Y-%m-%dT%H:%M:%SZ")})
    assert "Ingress" in {d["kind"] for d in build(spec, started, Children(), SETTINGS, NOW)}
