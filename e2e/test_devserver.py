"""The devserver operator on a real API server, run as its chart's ServiceAccount.

The real StatefulSet controller makes the server's pod and home claim; kwok binds the claim and runs the
pod on a fake GPU node this module adds (label nvidia.com/gpu.present, taint nvidia.com/gpu, 4 GPUs).
"""

from __future__ import annotations

import base64
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from harness import ROOT, KubectlError, Operator, apply, condition, get, installed_operator, kubectl, wait_for

pytestmark = pytest.mark.e2e

EXAMPLES = ROOT / "plugins" / "devserver" / "examples"
RELEASE = "dsv"
GPU_NODE = "devserver-e2e-gpu"
SEED = "my-dev-server"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq2Tq9sV0m6b1m0rj4Kc2dQe8lW5gq0zv4x3GZ5cH1N dev@laptop"


@pytest.fixture(scope="module")
def operator(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    with installed_operator(
        "devserver", cluster, tmp_path_factory.mktemp("devserver"), release=RELEASE
    ) as op:
        yield op


@pytest.fixture(scope="module")
def gpu_node(cluster: str) -> Iterator[str]:
    """A kwok node with GPUs, tainted so that only pods tolerating nvidia.com/gpu land there."""
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": GPU_NODE,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {"type": "kwok", "kubernetes.io/hostname": GPU_NODE, "nvidia.com/gpu.present": "true"},
        },
        "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "192.0.2.250"}],
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": "4"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": "4"},
        },
    }
    kubectl("create", "-f", "-", input=yaml.safe_dump(node), check=False)
    wait_for(
        lambda: condition(get("node", GPU_NODE), "Ready"), lambda s: s == "True", 60, "the GPU node Ready"
    )
    yield GPU_NODE
    kubectl("delete", "node", GPU_NODE, "--wait=false", check=False)


@pytest.fixture(autouse=True)
def servers_deleted_first(namespace: str) -> Iterator[None]:
    """Delete the test's DevServers before its namespace goes: an owner reconciled while its namespace
    terminates gets every write refused (403), which the harness counts as an RBAC failure."""
    yield
    kubectl("delete", "devservers", "--all", "-n", namespace, "--wait=true", "--timeout=60s", check=False)


@pytest.fixture
def flavors() -> Iterator[list[str]]:
    """Flavors a test made (cluster-scoped): deleted afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        kubectl("delete", "devserverflavor", name, "--ignore-not-found", "--wait=false", check=False)


def server(name: str, namespace: str) -> dict[str, Any] | None:
    return get("devserver", name, namespace)


def phase(obj: dict[str, Any] | None) -> str | None:
    return ((obj or {}).get("status") or {}).get("phase")


def wait_phase(name: str, namespace: str, *phases: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(
        lambda: server(name, namespace),
        lambda o: phase(o) in phases,
        timeout=timeout,
        describe=f"DevServer {name} to be {' or '.join(phases)}",
    )


def cond(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def scrape(operator: Operator) -> dict[str, float]:
    """The operator's metrics as {"name{labels}": value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5) as rsp:
        text = rsp.read().decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def writes(operator: Operator) -> float:
    return sum(v for k, v in scrape(operator).items() if k.startswith("troupe_devserver_api_writes_total"))


def shared_claim(namespace: str) -> dict[str, Any]:
    """The seed's efs-shared-claim, here on the cluster's default class (no EFS on a local cluster)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "efs-shared-claim", "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def flavor(name: str, memory: str = "1Gi") -> dict[str, Any]:
    return {
        "apiVersion": "devserver.io/v1",
        "kind": "DevServerFlavor",
        "metadata": {"name": name},
        "spec": {"resources": {"requests": {"cpu": "100m", "memory": memory}, "limits": {"memory": memory}}},
    }


def devserver(name: str, flavor_name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "devserver.io/v1",
        "kind": "DevServer",
        "metadata": {"name": name},
        "spec": {
            "owner": "dev@example.com",
            "flavor": flavor_name,
            "ssh": {"publicKey": KEY},
            "persistentHomeSize": "1Gi",
            **spec,
        },
    }


def test_seed_example_waits_for_its_flavor_and_claim_then_runs_restricted_with_an_ssh_endpoint(
    operator: Operator, gpu_node: str, namespace: str, flavors: list[str]
) -> None:
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    # the seed's DevServer verbatim, before its flavor exists: it waits, no error loop, nothing built
    apply((EXAMPLES / "devserver.yaml").read_text(), namespace)
    obj = wait_phase(SEED, namespace, "Pending")
    wait_for(
        lambda: server(SEED, namespace),
        lambda o: condition(o, "FlavorNotFound") == "True",
        30,
        "FlavorNotFound",
    )
    obj = server(SEED, namespace)
    assert obj is not None and "gpu-large" in cond(obj, "FlavorNotFound")["message"]
    assert get("statefulset", SEED, namespace) is None

    # the flavor appears: now it waits for the shared claim
    flavors.append("gpu-large")
    apply((EXAMPLES / "flavor-gpu-large.yaml").read_text())
    obj = wait_for(
        lambda: server(SEED, namespace),
        lambda o: condition(o, "SharedVolumeMissing") == "True" and condition(o, "FlavorNotFound") == "False",
        30,
        "the server waiting for its shared claim",
    )
    assert phase(obj) == "Pending" and "efs-shared-claim" in cond(obj, "SharedVolumeMissing")["message"]
    assert "startedAt" not in obj["status"]  # no lifetime counts while it waits
    assert get("statefulset", SEED, namespace) is None

    # the claim appears: the server is built and runs
    apply(shared_claim(namespace))
    obj = wait_phase(SEED, namespace, "Running", timeout=90)
    status = obj["status"]
    assert status["observedGeneration"] == obj["metadata"]["generation"] and status["flavor"] == "gpu-large"
    assert condition(obj, "Ready") == "True" and condition(obj, "SharedVolumeMissing") == "False"
    uid = obj["metadata"]["uid"]

    # children, field by field
    sts = get("statefulset", SEED, namespace)
    assert sts is not None and sts["metadata"]["ownerReferences"][0]["uid"] == uid
    assert sts["spec"]["replicas"] == 1 and sts["spec"]["serviceName"] == f"{SEED}-pods"
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    (template,) = sts["spec"]["volumeClaimTemplates"]
    assert template["spec"]["resources"]["requests"]["storage"] == "100Gi"
    assert "storageClassName" not in template["spec"]  # the cluster's default class
    pod_spec = sts["spec"]["template"]["spec"]
    (container,) = pod_spec["containers"]
    assert container["resources"] == {
        "requests": {"cpu": "8", "memory": "32Gi"},
        "limits": {"memory": "32Gi", "nvidia.com/gpu": "1"},
    }
    assert container["image"] == "troupe/devserver:0.1.0"
    assert container["ports"][0]["containerPort"] == 2222
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"home": "/home/dev", "shared": "/shared"}
    assert pod_spec["volumes"] == [
        {"name": "shared", "persistentVolumeClaim": {"claimName": "efs-shared-claim"}}
    ]
    assert pod_spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod_spec["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    (init,) = pod_spec["initContainers"]
    assert "chmod 700 /home/dev/.ssh" in init["command"][-1] and "chmod 600" in init["command"][-1]
    assert init["env"][0]["valueFrom"]["secretKeyRef"] == {"name": f"{SEED}-sshkey", "key": "authorized_keys"}
    assert not any("secret" in v for v in pod_spec.get("volumes", []))  # copied, never mounted
    secret = get("secret", f"{SEED}-sshkey", namespace)
    assert secret is not None
    assert base64.b64decode(secret["data"]["authorized_keys"]).decode() == "ssh-rsa AAAA...\n"
    headless = get("service", f"{SEED}-pods", namespace)
    assert headless is not None and headless["spec"]["clusterIP"] == "None"
    ssh = get("service", f"{SEED}-ssh", namespace)
    assert ssh is not None and ssh["spec"]["type"] == "NodePort"
    node_port = ssh["spec"]["ports"][0]["nodePort"]

    # the pod passed the namespace's restricted profile, runs on the GPU node; the home claim is bound
    pod = get("pod", f"{SEED}-0", namespace)
    assert pod is not None and pod["spec"]["nodeName"] == gpu_node
    home = get("pvc", f"home-{SEED}-0", namespace)
    assert home is not None and home["status"]["phase"] == "Bound"
    assert home["metadata"]["annotations"]["troupe.dev/owner"] == f"DevServer.devserver.io/{namespace}/{SEED}"
    assert status["ssh"]["nodePort"] == node_port
    assert status["ssh"]["command"] == f"ssh -p {node_port} dev@{pod['status']['hostIP']}"
    out = kubectl("get", "devservers", "-n", namespace).stdout
    assert out.split()[:6] == ["NAME", "OWNER", "FLAVOR", "PHASE", "SSH", "AGE"]
    assert "user@example.com" in out and "Running" in out and f"ssh -p {node_port}" in out
    out = kubectl("get", "devserverflavor", "gpu-large").stdout
    assert out.split()[:5] == ["NAME", "CPU", "MEMORY", "GPU", "AGE"] and out.split()[6:9] == [
        "8",
        "32Gi",
        "1",
    ]

    # a deleted child is put back
    kubectl("delete", "service", f"{SEED}-ssh", "-n", namespace)
    wait_for(lambda: get("service", f"{SEED}-ssh", namespace), bool, 30, "the SSH Service put back")

    # a flavor edit rolls the server
    pod_uid = pod["metadata"]["uid"]
    kubectl("patch", "devserverflavor", "gpu-large", "--type=merge", "-p",
            '{"spec":{"resources":{"limits":{"memory":"48Gi"},"requests":{"memory":"48Gi"}}}}')  # fmt: skip
    wait_for(
        lambda: get("pod", f"{SEED}-0", namespace),
        lambda p: p is not None
        and p["metadata"]["uid"] != pod_uid
        and p["spec"]["containers"][0]["resources"]["limits"]["memory"] == "48Gi",
        90,
        "the pod rolled with the flavor's new memory",
    )
    wait_phase(SEED, namespace, "Running", timeout=60)

    # a flavor deleted while in use: the server keeps running, and says so
    kubectl("delete", "devserverflavor", "gpu-large")
    obj = wait_for(
        lambda: server(SEED, namespace),
        lambda o: condition(o, "FlavorNotFound") == "True",
        30,
        "FlavorNotFound",
    )
    assert phase(obj) == "Running" and "keeps running" in cond(obj, "FlavorNotFound")["message"]
    assert get("statefulset", SEED, namespace)["spec"]["replicas"] == 1  # type: ignore[index]

    # deletion keeps the home claim (whenDeleted: Retain)
    home_uid = home["metadata"]["uid"]
    kubectl("delete", "devserver", SEED, "-n", namespace, "--wait=true", "--timeout=60s")
    wait_for(lambda: get("statefulset", SEED, namespace), lambda s: s is None, 60, "the StatefulSet gone")
    kept = get("pvc", f"home-{SEED}-0", namespace)
    assert (
        kept is not None
        and kept["metadata"]["uid"] == home_uid
        and not kept["metadata"].get("deletionTimestamp")
    )


def test_stop_and_start_keep_the_same_home(operator: Operator, namespace: str, flavors: list[str]) -> None:
    name = "stopper"
    flavor_name = f"e2e-{namespace}"[:60]
    flavors.append(flavor_name)
    apply(flavor(flavor_name))
    apply(devserver(name, flavor_name), namespace)
    wait_phase(name, namespace, "Running", timeout=90)
    home = get("pvc", f"home-{name}-0", namespace)
    assert home is not None
    metrics = scrape(operator)
    assert metrics[f'troupe_devserver_servers{{flavor="{flavor_name}",phase="Running"}}'] == 1
    assert metrics["troupe_devserver_time_to_running_seconds_count"] >= 1
    # steady state: Running, nothing to change, so no write (a resync or a pod status event changes nothing)
    before = writes(operator)
    kubectl("annotate", "devserver", name, "-n", namespace, "e2e/poke=1")  # a reconcile, same spec
    time.sleep(3)
    assert writes(operator) == before
    kubectl("patch", "devserver", name, "-n", namespace, "--type=merge", "-p", '{"spec":{"running":false}}')
    obj = wait_phase(name, namespace, "Stopped")
    assert obj["status"]["stoppedBy"] == "manual"
    assert scrape(operator)['troupe_devserver_stops_total{reason="manual"}'] >= 1
    wait_for(lambda: get("pod", f"{name}-0", namespace), lambda p: p is None, 60, "the pod gone")
    assert get("statefulset", name, namespace)["spec"]["replicas"] == 0  # type: ignore[index]
    kubectl("patch", "devserver", name, "-n", namespace, "--type=merge", "-p", '{"spec":{"running":true}}')
    wait_phase(name, namespace, "Running", timeout=90)
    again = get("pvc", f"home-{name}-0", namespace)
    assert again is not None and again["metadata"]["uid"] == home["metadata"]["uid"]


def test_lifetime_and_stop_schedule_stop_and_keep_the_server(
    operator: Operator, namespace: str, flavors: list[str]
) -> None:
    flavor_name = f"e2e-{namespace}"[:60]
    flavors.append(flavor_name)
    apply(flavor(flavor_name))
    # side by side, so the two waits of up to a minute overlap
    apply(devserver("shortlived", flavor_name, lifetime="1m"), namespace)
    apply(devserver("scheduled", flavor_name, schedule={"stop": "* * * * *"}), namespace)
    obj = wait_phase("shortlived", namespace, "Running", timeout=90)
    assert obj["status"]["nextStop"]
    wait_for(
        lambda: server("shortlived", namespace),
        lambda o: condition(o, "ExpiringSoon") == "True",
        60,
        "ExpiringSoon",
    )
    for name, reason in (("scheduled", "schedule"), ("shortlived", "lifetime")):
        obj = wait_phase(name, namespace, "Stopped", timeout=75)
        assert obj["status"]["stoppedBy"] == reason and "nextStop" not in obj["status"]
        assert get("statefulset", name, namespace)["spec"]["replicas"] == 0  # type: ignore[index]
        assert get("pvc", f"home-{name}-0", namespace) is not None
        assert server(name, namespace) is not None  # stopped, not deleted
    assert scrape(operator)['troupe_devserver_stops_total{reason="lifetime"}'] >= 1


def test_delete_home_on_delete_lets_the_claim_go(
    operator: Operator, namespace: str, flavors: list[str]
) -> None:
    name = "ephemeral"
    flavor_name = f"e2e-{namespace}"[:60]
    flavors.append(flavor_name)
    apply(flavor(flavor_name))
    apply(devserver(name, flavor_name, deleteHomeOnDelete=True), namespace)
    wait_phase(name, namespace, "Running", timeout=90)
    assert get("pvc", f"home-{name}-0", namespace) is not None
    kubectl("delete", "devserver", name, "-n", namespace, "--wait=true", "--timeout=60s")
    wait_for(
        lambda: get("pvc", f"home-{name}-0", namespace), lambda p: p is None, 90, "the home claim deleted"
    )


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"ssh": {"publicKey": "my key"}}, "spec.ssh.publicKey", "OpenSSH public key"),
        ({"owner": "nobody"}, "spec.owner", "e-mail address"),
        ({"persistentHomeSize": "big"}, "spec.persistentHomeSize", "storage size"),
        ({"schedule": {"stop": "at seven"}}, "spec.schedule.stop", "cron line"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    operator: Operator, namespace: str, spec: dict[str, Any], field: str, words: str
) -> None:
    body = devserver("bad", "small")
    body["spec"].update(spec)
    with pytest.raises(KubectlError) as refused:
        kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(body), check=True)
    assert field in str(refused.value) and words in str(refused.value)
    assert server("bad", namespace) is None


@pytest.mark.parametrize(
    ("name", "spec", "words"),
    [
        ("clock", {"schedule": {"stop": "0 25 * * *"}}, "out of range"),
        ("zone", {"schedule": {"stop": "0 19 * * *", "timeZone": "Mars/Olympus"}}, "unknown time zone"),
        ("1box", {}, "metadata.name"),
    ],
)
def test_what_only_the_operator_can_check_ends_failed_saying_what_to_fix(
    operator: Operator, namespace: str, name: str, spec: dict[str, Any], words: str
) -> None:
    body = devserver(name, "small")
    body["spec"].update(spec)
    apply(body, namespace)
    obj = wait_phase(name, namespace, "Failed")
    ready = cond(obj, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec" and words in ready["message"]
    assert get("statefulset", name, namespace) is None
