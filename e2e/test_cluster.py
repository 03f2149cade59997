"""The test cluster is a real Kubernetes: controllers, scheduler, GC, CEL, printer columns, kwok stages."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import (
    CLUSTER_DIR,
    apply,
    component_states,
    condition,
    get,
    kill_component,
    kubectl,
    kubectl_json,
    restart_apiserver,
    wait_for,
)

pytestmark = pytest.mark.e2e


def _deployment_available(namespace: str, name: str, timeout: float = 60) -> dict[str, Any]:
    """Create a 2-replica Deployment and wait until it is Available: the controller-manager made its
    ReplicaSet and pods, the scheduler bound them, kwok ran them."""
    apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                },
            },
        },
        namespace,
    )
    dep: dict[str, Any] = wait_for(
        lambda: get("deployment", name, namespace),
        lambda d: condition(d, "Available") == "True" and d["status"].get("readyReplicas") == 2,
        timeout=timeout,
        describe=f"Deployment {name} to be Available with 2 ready replicas",
    )
    return dep


def test_deployment_becomes_available(namespace: str) -> None:
    dep = _deployment_available(namespace, "web")
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


# ------------------------------------------------------------------------------ outages (local cluster only)
# The local control plane supervises its components (tools/cluster/supervise.py); these tests stop them on
# purpose. They skip on an existing cluster or K3s, and with TROUPE_E2E_NO_OUTAGES=1.


def test_cluster_recovers_from_an_apiserver_outage(namespace: str) -> None:
    outage = restart_apiserver(down_for=10)
    print(
        f"\n[outage] kube-apiserver down {outage.down_for:.1f}s, answering {outage.answering_after:.1f}s "
        f"after its restart (restart {outage.restarts})"
    )
    assert outage.down_for >= 9.5, outage
    assert outage.answering_after is not None and outage.answering_after < 60, outage
    # The controller-manager and the scheduler (no leader election) ride the outage out and watch again.
    # A Deployment created now needs both, and kwok, to become Available.
    _deployment_available(namespace, "after-outage", timeout=120)
    # `cluster.sh status` shows every component and how often it was restarted
    status = subprocess.run(
        ["bash", str(CLUSTER_DIR / "cluster.sh"), "status"], capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 0, status.stderr
    rows = {line.split()[0]: line.split() for line in status.stderr.splitlines() if line[:1].isalpha()}
    components = {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller"}
    assert set(rows) >= components, status.stderr
    assert rows["kube-apiserver"][1] == "running", status.stderr
    assert int(rows["kube-apiserver"][3]) == outage.restarts >= 1, status.stderr
    print(status.stderr)


def test_killed_controller_manager_comes_back(namespace: str) -> None:
    before = component_states().get("kube-controller-manager", {})
    outage = kill_component("kube-controller-manager")
    after = component_states()["kube-controller-manager"]
    assert after["restarts"] == outage.restarts > before["restarts"]
    assert after["pid"] != before["pid"]
    assert after["last_exit"] == -signal.SIGKILL  # Popen's code for "killed by SIGKILL"
    print(f"\n[outage] kube-controller-manager started again {outage.down_for:.1f}s after SIGKILL")
    # the new one takes the leader lease over once the killed one's expires (15 s), then works
    _deployment_available(namespace, "after-kill", timeout=120)


# ------------------------------------------------------------------------------------- the supervisor itself
# No cluster needed: the supervisor drives ordinary commands here, the same code that runs the components.

SUPERVISE = str(CLUSTER_DIR / "supervise.py")


def _supervise(workdir: Path, name: str, *command: str) -> subprocess.Popen[bytes]:
    # kwokctl starts each component in a session of its own; `down` relies on that process group
    return subprocess.Popen(
        [sys.executable, SUPERVISE, "run", "--name", name, "--workdir", str(workdir), "--", *command],
        start_new_session=True,
        stderr=subprocess.DEVNULL,
    )


def _state(workdir: Path, name: str) -> dict[str, Any]:
    path = workdir / "supervise" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_supervisor_backs_off_doubling_and_stops_for_good(tmp_path: Path) -> None:
    sup = _supervise(tmp_path, "crasher", "sh", "-c", "exit 3")
    log = tmp_path / "logs" / "supervise.log"
    try:
        wait_for(
            lambda: log.read_text() if log.exists() else "",
            lambda text: text.count("exited with 3") >= 3,
            timeout=30,
            describe="three exits of the crashing command",
            interval=0.1,
        )
        lines = log.read_text().splitlines()
        backoffs = [line.rsplit("back-off ", 1)[1] for line in lines if "back-off" in line]
        assert backoffs[:3] == ["1s", "2s", "4s"], log.read_text()
        os.kill(sup.pid, signal.SIGTERM)
        assert sup.wait(10) == 0
        restarts = _state(tmp_path, "crasher")["restarts"]
        time.sleep(1.5)  # longer than the first back-off: a resurrection would show up
        assert _state(tmp_path, "crasher")["state"] == "stopped"
        assert _state(tmp_path, "crasher")["restarts"] == restarts
    finally:
        if sup.poll() is None:
            sup.kill()


def test_supervisor_down_and_supervisor_death_leave_no_process(tmp_path: Path) -> None:
    children: list[int] = []
    try:
        # `down` (what cluster.sh down runs): the supervisor named by kwokctl's pid file stops its child
        sup = _supervise(tmp_path, "sleeper", "sleep", "300")
        children.append(wait_for(lambda: _state(tmp_path, "sleeper").get("pid"), describe="the child"))
        (tmp_path / "pids").mkdir()
        (tmp_path / "pids" / "sleeper.pid").write_text(str(sup.pid))
        down = subprocess.run(
            [sys.executable, SUPERVISE, "down", "--workdir", str(tmp_path), "--guard", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert down.returncode == 0, down.stderr
        assert sup.wait(5) == 0
        assert _gone(children[-1])
        assert _state(tmp_path, "sleeper")["state"] == "stopped"

        # kwokctl itself stops components with SIGKILL: the child must not outlive its supervisor
        other = tmp_path / "other"
        sup = _supervise(other, "sleeper", "sleep", "300")
        children.append(wait_for(lambda: _state(other, "sleeper").get("pid"), describe="the child"))
        sup.kill()
        sup.wait(5)
        wait_for(lambda: _gone(children[-1]), timeout=10, describe="the child to die with its supervisor")
    finally:
        for pid in children:  # when the test failed: leave no sleeper of ours behind (not a reused pid)
            with contextlib.suppress(OSError):
                if not _gone(pid) and Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x00300\x00":
                    os.kill(pid, signal.SIGKILL)
