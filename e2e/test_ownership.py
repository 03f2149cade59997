"""Data safety on a real API server: an operator never takes over or deletes an object it did not create.

Each operator runs as its chart's ServiceAccount. The child names are learnt from a first object in a
namespace of its own, so the test holds whatever the naming rule is; then the same object meets user
objects holding every one of those names.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from harness import (
    ROOT,
    Operator,
    apply,
    condition,
    create_namespace,
    delete_namespace,
    get,
    installed_operator,
    kubectl,
    kubectl_json,
    new_namespace_name,
    wait_for,
)

pytestmark = pytest.mark.e2e

WORKSHOP = yaml.safe_load((ROOT / "plugins" / "workshop" / "examples" / "workshop.yaml").read_text())
CHILD_KINDS = ("service", "secret", "persistentvolumeclaim", "deployment", "ingress")


@pytest.fixture(scope="module")
def workshops(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    with installed_operator("workshop", cluster, tmp_path_factory.mktemp("ownership"), release="own") as op:
        yield op


@pytest.fixture
def second_namespace(cluster: str) -> Iterator[str]:
    name = create_namespace(new_namespace_name("ownership"))
    yield name
    delete_namespace(name)


def children_of(name: str, namespace: str) -> dict[str, list[str]]:
    """Names of the workshop's children by kind, found by the instance label the core sets."""
    found = {}
    for kind in CHILD_KINDS:
        items = kubectl_json(
            "get", kind, "-n", namespace, "-l", f"app.kubernetes.io/instance={name}", "-o", "json"
        )
        found[kind] = sorted(i["metadata"]["name"] for i in items["items"])
    return found


def users_object(kind: str, name: str) -> dict[str, Any]:
    meta = {"name": name, "labels": {"owner": "a-user"}}
    if kind == "service":
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {"selector": {"app": "mine"}, "ports": [{"port": 1234}]},
        }
    if kind == "secret":
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta,
            "stringData": {"password": "users-own"},
        }
    if kind == "persistentvolumeclaim":
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": meta,
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        }
    if kind == "deployment":
        labels = {"app": "mine"}
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
                },
            },
        }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta,
        "spec": {"rules": [{"host": "mine.example.org"}]},
    }


def fingerprint(kind: str, name: str, namespace: str) -> tuple[str, str, Any]:
    obj = get(kind, name, namespace)
    assert obj is not None, f"the user's {kind} {name} was deleted"
    meta = obj["metadata"]
    assert "ownerReferences" not in meta, f"the user's {kind} {name} got an owner: {meta['ownerReferences']}"
    assert not any(k.startswith("troupe.dev/") for k in meta.get("annotations") or {}), meta
    return meta["uid"], meta["resourceVersion"], obj.get("spec") or obj.get("data")


def test_user_objects_with_every_child_name_are_never_touched(
    workshops: Operator, namespace: str, second_namespace: str
) -> None:
    name = WORKSHOP["metadata"]["name"]
    apply(WORKSHOP, namespace)
    wait_for(
        lambda: get("workshop", name, namespace), lambda o: (o.get("status") or {}).get("phase") == "Running"
    )
    names = children_of(name, namespace)
    assert all(names[kind] for kind in CHILD_KINDS), names

    for kind, held in names.items():
        for child in held:
            apply(users_object(kind, child), second_namespace)
    before = {(k, n): fingerprint(k, n, second_namespace) for k, held in names.items() for n in held}

    apply(WORKSHOP, second_namespace)
    blocked = wait_for(
        lambda: get("workshop", name, second_namespace),
        lambda o: condition(o, "NameConflict") == "True",
        describe="a NameConflict condition",
    )
    message = next(c for c in blocked["status"]["conditions"] if c["type"] == "NameConflict")["message"]
    for kind, held in names.items():
        for child in held:
            assert child in message, f"{kind} {child} is not named in: {message}"
    assert condition(blocked, "Ready") == "False"
    events = kubectl_json("get", "events", "-n", second_namespace, "-o", "json")["items"]
    assert any(e["reason"] == "NameConflict" and e["type"] == "Warning" for e in events)

    time.sleep(3)  # a few reconciles and child events later, still nothing touched
    assert {key: fingerprint(*key, second_namespace) for key in before} == before

    kubectl("delete", "workshop", name, "-n", second_namespace, "--wait=true", "--timeout=60s")
    assert {key: fingerprint(*key, second_namespace) for key in before} == before  # nothing deleted with it

    apply(WORKSHOP, second_namespace)
    wait_for(
        lambda: get("workshop", name, second_namespace),
        lambda o: condition(o, "NameConflict") == "True",
        describe="the NameConflict condition again",
    )
    for kind, child in before:
        kubectl("delete", kind, child, "-n", second_namespace, "--wait=true")
    freed = wait_for(
        lambda: get("workshop", name, second_namespace),
        lambda o: (o.get("status") or {}).get("phase") == "Running"
        and condition(o, "NameConflict") == "False",
        timeout=90,
        describe="the workshop to proceed once the names are free",
    )
    assert freed["status"]["url"]


def test_owners_whose_names_clean_alike_get_disjoint_children(workshops: Operator, namespace: str) -> None:
    spec = {k: v for k, v in WORKSHOP["spec"].items() if k != "ingress"}
    for name in ("team.x", "team-x"):
        apply({**WORKSHOP, "metadata": {"name": name}, "spec": {**spec, "name": name}}, namespace)
    for name in ("team.x", "team-x"):
        wait_for(
            lambda n=name: get("workshop", n, namespace),  # type: ignore[misc]
            lambda o: (o.get("status") or {}).get("phase") == "Running",
            describe=f"Workshop {name} to be Running",
        )
    owners: dict[str, set[str]] = {}
    for kind in CHILD_KINDS[:4]:
        for item in kubectl_json("get", kind, "-n", namespace, "-o", "json")["items"]:
            annotations = item["metadata"].get("annotations") or {}
            if "troupe.dev/owner-uid" in annotations:
                owners.setdefault(annotations["troupe.dev/owner-uid"], set()).add(
                    f"{kind}/{item['metadata']['name']}"
                )
    assert len(owners) == 2, owners
    first, second = owners.values()
    assert first and second and not first & second
    survivor = get("workshop", "team-x", namespace)
    assert survivor is not None
    kept = owners[survivor["metadata"]["uid"]]
    kubectl("delete", "workshop", "team.x", "-n", namespace, "--wait=true", "--timeout=60s")
    survivor = get("workshop", "team-x", namespace)
    assert survivor is not None and survivor["status"]["phase"] == "Running"
    for child in kept:
        assert get(*child.split("/"), namespace) is not None, f"{child} of team-x went with team.x"


@pytest.fixture(scope="module")
def workflows(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    with installed_operator(
        "observatory", cluster, tmp_path_factory.mktemp("ownership-obs"), release="ownobs"
    ) as op:
        yield op


def one_task(name: str) -> dict[str, Any]:
    kind = {"apiVersion": "workflow.seventh-horizon.io/v1alpha1", "kind": "Observatory"}
    task = {"name": "only", "image": "busybox:1.36"}
    return {**kind, "metadata": {"name": name}, "spec": {"tasks": [task]}}


def test_a_users_pod_with_a_task_pods_name_is_neither_adopted_nor_deleted(
    workflows: Operator, namespace: str, second_namespace: str
) -> None:
    apply(one_task("wf"), namespace)
    wait_for(
        lambda: get("observatory", "wf", namespace),
        lambda o: (o.get("status") or {}).get("phase") == "Succeeded",
    )
    pod_name = kubectl_json("get", "pods", "-n", namespace, "-o", "json")["items"][0]["metadata"]["name"]

    users_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod_name, "labels": {"owner": "a-user"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "mine", "image": "busybox:1.36"}]},
    }
    apply(users_pod, second_namespace)
    uid = get("pod", pod_name, second_namespace)["metadata"]["uid"]  # type: ignore[index]
    apply(one_task("wf"), second_namespace)
    blocked = wait_for(
        lambda: get("observatory", "wf", second_namespace),
        lambda o: condition(o, "NameConflict") == "True",
        describe="a NameConflict naming the user's pod",
    )
    message = next(c for c in blocked["status"]["conditions"] if c["type"] == "NameConflict")["message"]
    assert f"Pod {second_namespace}/{pod_name}" in message
    kubectl("delete", "observatory", "wf", "-n", second_namespace, "--wait=true", "--timeout=60s")
    left = get("pod", pod_name, second_namespace)
    assert left is not None and left["metadata"]["uid"] == uid and "ownerReferences" not in left["metadata"]
