"""The test cluster is a real Kubernetes: controllers, scheduler, GC, CEL, printer columns, kwok stages."""

from __future__ import annotations

import pytest
import yaml
from harness import apply, condition, get, kubectl, kubectl_json, wait_for

pytestmark = pytest.mark.e2e


def test_deployment_becomes_available(namespace: str) -> None:
    apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                },
            },
        },
        namespace,
    )
    dep = wait_for(
        lambda: get("deployment", "web", namespace),
        lambda d: condition(d, "Available") == "True" and d["status"].get("readyReplicas") == 2,
        timeout=60,
        describe="Deployment web to be Available with 2 ready replicas",
    )
    assert dep["status"]["availableReplicas"] == 2
    pods = kubectl_json("get", "pods", "-n", namespace, "-l", "app=web")["items"]
    assert {p["status"]["phase"] for p in pods} == {"Running"}  # no kwok-exit annotation: stays Running


def test_job_completes(namespace: str) -> None:
    apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once"},
            "spec": {
                "template": {
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
                }
            },
        },
        namespace,
    )
    wait_for(
        lambda: get("job", "once", namespace),
        lambda j: condition(j, "Complete") == "True",
        timeout=60,
        describe="Job once to Complete",
    )


def test_pvc_binds(namespace: str) -> None:
    default = [
        sc["metadata"]["name"]
        for sc in kubectl_json("get", "storageclass")["items"]
        if sc["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class") == "true"
    ]
    assert default, "no default StorageClass"
    apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
        namespace,
    )
    pvc = wait_for(
        lambda: get("pvc", "data", namespace),
        lambda p: p.get("status", {}).get("phase") == "Bound",
        timeout=60,
        describe="PVC data to be Bound",
    )
    assert pvc["spec"]["storageClassName"] in default
    assert pvc["spec"]["volumeName"]


def test_garbage_collection_deletes_owned_child(namespace: str) -> None:
    apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "parent"}, "data": {"a": "1"}},
        namespace,
    )
    parent = get("configmap", "parent", namespace)
    assert parent is not None
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "parent", "uid": parent["metadata"]["uid"]}
    apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "child", "ownerReferences": [owner]}},
        namespace,
    )
    assert get("configmap", "child", namespace) is not None
    kubectl("delete", "configmap", "parent", "-n", namespace)
    wait_for(
        lambda: get("configmap", "child", namespace),
        lambda c: c is None,
        timeout=60,
        describe="the garbage collector to delete ConfigMap child (owned by parent)",
    )


CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.e2e.troupe.dev
spec:
  group: e2e.troupe.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Colour, type: string, jsonPath: .spec.colour}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              colour: {type: string}
            x-kubernetes-validations:
            - rule: "self.size <= 10"
              message: "size must be at most 10"
"""


@pytest.fixture(scope="module")
def widget_crd(cluster: str) -> str:
    apply(CRD)
    wait_for(
        lambda: get("crd", "widgets.e2e.troupe.dev"),
        lambda c: condition(c, "Established") == "True",
        timeout=30,
        describe="CRD widgets.e2e.troupe.dev to be Established",
    )
    # discovery can lag Established by a moment
    wait_for(
        lambda: kubectl("get", "widgets", "-A", check=False).returncode == 0,
        timeout=30,
        describe="widgets served",
    )
    return "widgets.e2e.troupe.dev"


def _widget(name: str, size: int) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "e2e.troupe.dev/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": {"size": size, "colour": "teal"},
        }
    )


def test_crd_cel_rule_rejects_bad_object(namespace: str, widget_crd: str) -> None:
    bad = kubectl("apply", "-n", namespace, "-f", "-", input=_widget("big", 11), check=False)
    assert bad.returncode != 0
    assert "size must be at most 10" in bad.stderr, bad.stderr
    kubectl("apply", "-n", namespace, "-f", "-", input=_widget("ok", 3))


def test_kubectl_shows_printer_columns(namespace: str, widget_crd: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=_widget("shown", 7))
    out = kubectl("get", "widgets", "-n", namespace).stdout
    header, row = out.splitlines()[:2]
    assert header.split() == ["NAME", "SIZE", "COLOUR", "AGE"], out
    assert row.split()[:3] == ["shown", "7", "teal"], out


def _pod(name: str, annotations: dict[str, str]) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]},
    }


def test_kwok_exit_annotation_fails_pod_with_exit_code(namespace: str) -> None:
    apply(_pod("fails", {"troupe.dev/kwok-exit": "3"}), namespace)
    pod = wait_for(
        lambda: get("pod", "fails", namespace),
        lambda p: p.get("status", {}).get("phase") == "Failed",
        timeout=60,
        describe="pod fails (troupe.dev/kwok-exit: 3) to be Failed",
    )
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 3
    assert terminated["reason"] == "Error"


def test_kwok_exit_zero_succeeds_after_delay(namespace: str) -> None:
    apply(_pod("works", {"troupe.dev/kwok-exit": "0", "troupe.dev/kwok-delay": "3s"}), namespace)
    running = wait_for(
        lambda: get("pod", "works", namespace),
        lambda p: p.get("status", {}).get("phase") in ("Running", "Succeeded"),
        timeout=60,
        describe="pod works to start",
    )
    assert running["status"]["phase"] == "Running", "kwok-delay: 3s should keep the pod Running for a while"
    pod = wait_for(
        lambda: get("pod", "works", namespace),
        lambda p: p.get("status", {}).get("phase") == "Succeeded",
        timeout=60,
        describe="pod works (troupe.dev/kwok-exit: 0) to be Succeeded",
    )
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


def test_failing_job_pod_fails_the_job(namespace: str) -> None:
    apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "broken"},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {"annotations": {"troupe.dev/kwok-exit": "2"}},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]},
                },
            },
        },
        namespace,
    )
    wait_for(
        lambda: get("job", "broken", namespace),
        lambda j: condition(j, "Failed") == "True",
        timeout=60,
        describe="Job broken (pod kwok-exit 2, backoffLimit 0) to be Failed",
    )
