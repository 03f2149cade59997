"""The workspace operator on a real API server, run as its chart's ServiceAccount.

There is no data-sync controller and no KubeVirt here: the VMDiskImage CRD (pelotech/data-sync-operator)
and KubeVirt's VirtualMachine CRD are installed from static copies in e2e/fixtures/, and the tests play
both controllers by patching the objects' status (a disk's phase Queued → Syncing → Ready or Failed, a
VM's printableStatus and ready). kwok makes the Deployments' pods Running.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from harness import (
    ROOT,
    KubectlError,
    Operator,
    apply,
    condition,
    get,
    installed_operator,
    kubectl,
    wait_for,
)

pytestmark = pytest.mark.e2e

RELEASE = "wsp-e2e"
EXAMPLES = ROOT / "plugins" / "workspace" / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
VMDI_CRD = FIXTURES / "crd.pelotech.ot_vmdiskimages.yaml"
VM_CRD = FIXTURES / "kubevirt.io_virtualmachines.yaml"
SEED = "data-analysis-environment-1"


class Env:
    system = ""


def install_crd(path: Path, name: str) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    wait_for(
        lambda: get("crd", name),
        lambda c: any(
            x["type"] == "Established" and x["status"] == "True"
            for x in (c.get("status") or {}).get("conditions") or []
        ),
        30,
        f"CRD {name} Established",
    )


@pytest.fixture(scope="module")
def operator(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    install_crd(VMDI_CRD, "vmdiskimages.crd.pelotech.ot")
    # KubeVirt arrives while the operator runs (test_without_kubevirt..., or the kubevirt fixture)
    kubectl(
        "delete", "crd", "virtualmachines.kubevirt.io", "--ignore-not-found", "--wait=true", "--timeout=60s"
    )

    def env(system: str) -> dict[str, str]:
        # what the chart's Deployment passes (templates/_config.tpl)
        Env.system = system
        set_policy(5)
        return {
            "TROUPE_WORKSPACE_POLICY": f"{system}/sync-operator-policy",
            "TROUPE_WORKSPACE_DISK_NAMESPACE": system,
            "TROUPE_WORKSPACE_FAIL_AFTER": "5m",
        }

    log_dir = tmp_path_factory.mktemp("workspace")
    with installed_operator("workspace", cluster, log_dir, release=RELEASE, env=env) as op:
        yield op
        kubectl("delete", "workspaces", "--all", "--wait=true", "--timeout=60s", check=False)


@pytest.fixture
def kubevirt(operator: Operator) -> None:
    install_crd(VM_CRD, "virtualmachines.kubevirt.io")


def set_policy(concurrency: int | str) -> None:
    apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "sync-operator-policy"},
            "data": {"workspaceConcurrency": str(concurrency)},
        },
        Env.system,
    )


def workspace(name: str) -> dict[str, Any] | None:
    return get("workspace", name)


def phase(obj: dict[str, Any] | None) -> str | None:
    return ((obj or {}).get("status") or {}).get("phase")


def wait_phase(name: str, wanted: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(
        lambda: workspace(name), lambda o: phase(o) == wanted, timeout, f"workspace {name} {wanted}"
    )


def wait_status(name: str, test: Any, describe: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(
        lambda: workspace(name), lambda o: o is not None and test(o.get("status") or {}), timeout, describe
    )


def vms(status: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["phase"] for v in (status.get("resourceStatus") or {}).get("virtualMachines") or []}


def cond(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def disk(name: str, size: str = "1Gi") -> dict[str, Any]:
    return {
        "apiVersion": "crd.pelotech.ot/v1alpha1",
        "kind": "VMDiskImage",
        "metadata": {"name": name},
        "spec": {"sourceType": "blank", "secretRef": "none", "diskSize": size},
    }


def disk_phase(name: str, phase_: str, message: str = "") -> None:
    """Play the data-sync controller: set a VMDiskImage's phase."""
    body = json.dumps({"status": {"phase": phase_, "message": message}})
    kubectl(
        "patch", "vmdiskimage", name, "-n", Env.system, "--subresource=status", "--type=merge", "-p", body
    )


def vm_running(name: str, namespace: str) -> None:
    """Play KubeVirt: the VM's instance is up and ready."""
    wait_for(lambda: get("virtualmachine", name, namespace), describe=f"VirtualMachine {namespace}/{name}")
    body = '{"status": {"printableStatus": "Running", "ready": true}}'
    kubectl(
        "patch", "virtualmachine", name, "-n", namespace, "--subresource=status", "--type=merge", "-p", body
    )


def containers_only(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "pelotech.ot/v1alpha1",
        "kind": "Workspace",
        "metadata": {"name": name},
        "spec": {
            "containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}],
            **spec,
        },
    }


def with_vm(name: str, disk_name: str, template: bool = False) -> dict[str, Any]:
    vm_spec: dict[str, Any] = {"VMDiskImageName": disk_name}
    if template:
        vm_spec["vmDiskImage"] = {"sourceType": "blank", "secretRef": "none", "diskSize": "2Gi"}
    body = containers_only(name)
    body["spec"]["virtualMachines"] = [{"name": "vm", "spec": vm_spec}]
    return body


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_without_kubevirt_containers_work_and_vms_wait_until_it_is_installed(operator: Operator) -> None:
    """Runs first: the operator started without the VirtualMachine CRD (KubeVirt's CRD re-created
    while the operator runs is a known gap of the watch, see the report)."""
    assert get("crd", "virtualmachines.kubevirt.io") is None
    try:
        apply(containers_only("plain"))
        apply(with_vm("needs-vm", "kv-disk"))
        apply(disk("kv-disk"), Env.system)
        disk_phase("kv-disk", "Ready")
        wait_phase("plain", "Ready")
        blocked = wait_for(
            lambda: workspace("needs-vm"), lambda o: condition(o, "MissingAPI") == "True", 30, "MissingAPI"
        )
        assert (
            "kubevirt.io/v1 VirtualMachine is not served: install KubeVirt"
            in cond(blocked, "MissingAPI")["message"]
        )
    finally:
        install_crd(VM_CRD, "virtualmachines.kubevirt.io")
    vm_running("vm", "ws-needs-vm")  # made once the CRD is served, no restart
    freed = wait_phase("needs-vm", "Ready")
    assert condition(freed, "MissingAPI") == "False"
    kubectl("delete", "workspace", "plain", "needs-vm", "--wait=true", "--timeout=60s")
    kubectl("delete", "vmdiskimage", "kv-disk", "-n", Env.system)


def test_seed_example_to_ready_heals_toggles_fails_recovers_and_cleans_up(
    operator: Operator, kubevirt: None
) -> None:
    apply((EXAMPLES / "workspace.yaml").read_text())  # verbatim, status section and all
    ns = "ws-" + SEED
    waiting = wait_status(
        SEED,
        lambda s: vms(s) == {"database-vm": "DiskImageMissing", "analytics-vm": "DiskImageMissing"},
        "disks missing",
    )
    assert phase(waiting) == "Provisioning" and condition(waiting, "DiskImageMissing") == "True"
    assert "database-vmdi" in cond(waiting, "DiskImageMissing")["message"]
    # what needs no disk is there already, field by field
    namespace = get("namespace", ns)
    assert namespace is not None and namespace["metadata"]["ownerReferences"][0]["name"] == SEED
    dep = get("deployment", "api-server", ns)
    assert dep is not None
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "my-registry/api-server:3.1.0"
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    svc = get("service", "api-server", ns)
    assert svc is not None and svc["spec"]["ports"][0]["port"] == 8080
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    policy = get("networkpolicy", "workspace-isolation", ns)
    assert policy is not None and policy["spec"]["podSelector"]["matchLabels"] == {
        "pelotech.ot/workspace": SEED
    }

    # the data-sync controller: disks appear Queued, sync, become Ready
    apply([disk("database-vmdi", "5Gi"), disk("analytics-vmdi")], Env.system)
    disk_phase("database-vmdi", "Queued")
    disk_phase("analytics-vmdi", "Queued")
    wait_status(SEED, lambda s: vms(s) == {"database-vm": "Queued", "analytics-vm": "Queued"}, "VMs Queued")
    disk_phase("database-vmdi", "Syncing")
    wait_status(SEED, lambda s: vms(s)["database-vm"] == "Syncing", "database-vm Syncing")
    assert get("virtualmachine", "database-vm", ns) is None  # no VM before its disk is Ready
    disk_phase("database-vmdi", "Ready")
    disk_phase("analytics-vmdi", "Ready")
    vm = wait_for(lambda: get("virtualmachine", "database-vm", ns), describe="the database VM")
    assert vm["spec"]["runStrategy"] == "Always"
    (dv,) = vm["spec"]["dataVolumeTemplates"]
    assert dv["spec"]["source"]["snapshot"] == {"namespace": Env.system, "name": "database-vmdi"}
    assert dv["spec"]["storage"]["resources"]["requests"]["storage"] == "5Gi"
    assert vm["spec"]["template"]["metadata"]["labels"]["pelotech.ot/workspace"] == SEED
    vm_running("database-vm", ns)
    vm_running("analytics-vm", ns)
    ready = wait_phase(SEED, "Ready")
    assert ready["status"]["vms"] == "2/2" and ready["status"]["containers"] == "1/1"
    assert ready["status"]["resourceStatus"]["containers"] == [{"name": "api-server", "status": "Running"}]
    printed = kubectl("get", "workspace", SEED).stdout
    assert "Ready" in printed.splitlines()[1] and "2/2" in printed.splitlines()[1]

    # self-healing: a deleted Deployment and policy come back
    kubectl("delete", "deployment", "api-server", "-n", ns, "--wait=true")
    kubectl("delete", "networkpolicy", "workspace-isolation", "-n", ns, "--wait=true")
    wait_for(lambda: get("deployment", "api-server", ns), describe="the Deployment back")
    wait_for(lambda: get("networkpolicy", "workspace-isolation", ns), describe="the policy back")

    # a deleted VirtualMachine comes back too (KubeVirt's CRD is a child kind like any other)
    kubectl("delete", "virtualmachine", "database-vm", "-n", ns, "--wait=true")
    wait_for(lambda: get("virtualmachine", "database-vm", ns), describe="the VM back")
    vm_running("database-vm", ns)

    # a spec edit rolls out: a new image
    kubectl(
        "patch",
        "workspace",
        SEED,
        "--type=json",
        "-p",
        '[{"op": "replace", "path": "/spec/containers/0/image", "value": "my-registry/api-server:3.2.0"}]',
    )
    wait_for(
        lambda: get("deployment", "api-server", ns),
        lambda o: o["spec"]["template"]["spec"]["containers"][0]["image"] == "my-registry/api-server:3.2.0",
        30,
        "the new image rolled out",
    )

    # isolation toggles the policy
    kubectl("patch", "workspace", SEED, "--type=merge", "-p", '{"spec": {"network": {"isolate": false}}}')
    wait_for(
        lambda: get("networkpolicy", "workspace-isolation", ns), lambda o: o is None, 30, "policy removed"
    )
    kubectl("patch", "workspace", SEED, "--type=merge", "-p", '{"spec": {"network": {"isolate": true}}}')
    wait_for(lambda: get("networkpolicy", "workspace-isolation", ns), describe="policy back on")

    # a disk fails: the workspace fails naming it; recovery returns it to Ready
    disk_phase("analytics-vmdi", "Failed", "s3 access denied")
    failed = wait_phase(SEED, "Failed", timeout=30)
    assert "disk image analytics-vmdi Failed: s3 access denied" in cond(failed, "Ready")["message"]
    disk_phase("analytics-vmdi", "Ready")
    wait_phase(SEED, "Ready", timeout=30)

    # deletion: VMs and workloads go, then the namespace; the disks (not ours) stay
    kubectl("delete", "workspace", SEED, "--wait=true", "--timeout=60s")
    assert get("virtualmachine", "database-vm", ns) is None and get("deployment", "api-server", ns) is None
    wait_for(
        lambda: get("namespace", ns),
        lambda o: o is None or o["status"].get("phase") == "Terminating",
        30,
        "namespace going",
    )
    assert get("vmdiskimage", "database-vmdi", Env.system) is not None
    kubectl("delete", "vmdiskimage", "database-vmdi", "analytics-vmdi", "-n", Env.system)


def test_concurrency_one_then_two_released_at_once(operator: Operator, kubevirt: None) -> None:
    set_policy(1)
    try:
        apply(with_vm("q1", "q1-disk"))  # holds its slot: its disk is missing
        wait_phase("q1", "Provisioning")
        apply(containers_only("q2"))
        queued = wait_status(
            "q2",
            lambda s: any(c["type"] == "Queued" and c["status"] == "True" for c in s.get("conditions") or []),
            "q2 queued",
        )
        assert (
            phase(queued) == "Provisioning"
            and "number 1 in line (limit 1)" in cond(queued, "Queued")["message"]
        )
        assert get("namespace", "ws-q2") is None  # nothing built while queued
        apply(disk("q1-disk"), Env.system)
        disk_phase("q1-disk", "Ready")
        vm_running("vm", "ws-q1")
        first = wait_phase("q1", "Ready")
        second = wait_phase("q2", "Ready")
        assert at(second["status"]["provisioningSince"]) >= at(first["status"]["readyAt"])

        apply(with_vm("q3", "q3-disk"))
        wait_phase("q3", "Provisioning")
        apply(containers_only("q4"))
        wait_status(
            "q4",
            lambda s: any(c["type"] == "Queued" and c["status"] == "True" for c in s.get("conditions") or []),
            "q4 queued",
        )
        set_policy(2)  # taken at once: q4 provisions while q3 still waits for its disk
        wait_phase("q4", "Ready", timeout=30)
        assert condition(workspace("q3"), "Queued") == "False" and phase(workspace("q3")) == "Provisioning"
        set_policy("many")  # a bad value: the default, with a condition saying so
        defaulted = wait_status(
            "q3",
            lambda s: any(
                c["type"] == "PolicyDefaulted" and c["status"] == "True" for c in s.get("conditions") or []
            ),
            "PolicyDefaulted",
        )
        assert "using the default 2" in cond(defaulted, "PolicyDefaulted")["message"]
    finally:
        set_policy(5)
        kubectl("delete", "workspace", "q1", "q2", "q3", "q4", "--wait=true", "--timeout=60s", check=False)
        kubectl("delete", "vmdiskimage", "q1-disk", "-n", Env.system, check=False)


def test_a_templated_disk_is_shared_and_goes_with_its_last_workspace(
    operator: Operator, kubevirt: None
) -> None:
    apply(with_vm("t1", "shared-disk", template=True))
    made = wait_for(
        lambda: get("vmdiskimage", "shared-disk", Env.system),
        describe="the VMDiskImage made from the template",
    )
    assert made["metadata"]["labels"]["pelotech.ot/created-by-workspace"] == "t1"
    assert made["spec"]["diskSize"] == "2Gi" and not made["metadata"].get("ownerReferences")
    wait_status("t1", lambda s: vms(s) == {"vm": "Queued"}, "t1's VM Queued on its disk")
    apply(with_vm("t2", "shared-disk"))  # no template: uses the existing disk as it is
    disk_phase("shared-disk", "Ready")
    vm_running("vm", "ws-t1")
    vm_running("vm", "ws-t2")
    wait_phase("t1", "Ready")
    wait_phase("t2", "Ready")
    kubectl("delete", "workspace", "t1", "--wait=true", "--timeout=60s")
    time.sleep(5)  # the sweeper runs about 2 s after a workspace event
    assert get("vmdiskimage", "shared-disk", Env.system) is not None, "kept while t2 references it"
    kubectl("delete", "workspace", "t2", "--wait=true", "--timeout=60s")
    wait_for(
        lambda: get("vmdiskimage", "shared-disk", Env.system),
        lambda o: o is None,
        30,
        "the disk gone with its last workspace",
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "other"}]},
            "containers: names must be unique",
        ),
        (
            {
                "containers": [{"name": "a", "image": "x"}],
                "virtualMachines": [{"name": "a", "spec": {"VMDiskImageName": "d"}}],
            },
            "may not share its name",
        ),
        (
            {"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 70000}]}]},
            "spec.containers[0].ports[0].containerPort",
        ),
        (
            {
                "containers": [
                    {"name": "a", "image": "x", "ports": [{"containerPort": 80, "protocol": "HTTP"}]}
                ]
            },
            "spec.containers[0].ports[0].protocol",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    operator: Operator, spec: dict[str, Any], message: str
) -> None:
    body = {
        "apiVersion": "pelotech.ot/v1alpha1",
        "kind": "Workspace",
        "metadata": {"name": "bad"},
        "spec": spec,
    }
    with pytest.raises(KubectlError) as err:
        apply(body)
    assert message in str(err.value)
    assert workspace("bad") is None


def test_a_namespace_someone_else_made_is_refused_and_kept(operator: Operator) -> None:
    kubectl("create", "namespace", "taken-by-someone")
    try:
        apply(containers_only("squatter", namespace="taken-by-someone"))
        blocked = wait_for(
            lambda: workspace("squatter"),
            lambda o: condition(o, "NameConflict") == "True",
            30,
            "NameConflict",
        )
        assert "Namespace taken-by-someone" in cond(blocked, "NameConflict")["message"]
        assert get("deployment", "web", "taken-by-someone") is None  # nothing written into it
        kubectl("delete", "workspace", "squatter", "--wait=true", "--timeout=60s")
        kept = get("namespace", "taken-by-someone")
        assert kept is not None and kept["status"]["phase"] == "Active"
    finally:
        kubectl("delete", "namespace", "taken-by-someone", "--wait=false", check=False)


def writes(operator: Operator) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5) as rsp:
        text = rsp.read().decode()
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("troupe_workspace_api_writes_total{")
    )


def test_steady_state_writes_nothing(operator: Operator) -> None:
    """Quantities the API server rewrites (2048Mi is stored as 2Gi) must not make every reconcile re-apply."""
    body = containers_only("steady", network={"isolate": True})
    body["spec"]["containers"][0]["resources"] = {"cpu": "0.5", "memory": "2048Mi"}
    body["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    apply(body)
    wait_phase("steady", "Ready")
    time.sleep(3)  # the last status write and its events settle
    before = writes(operator)
    kubectl("annotate", "workspace", "steady", "poke=1")  # an event, so a reconcile surely runs
    time.sleep(4)
    after = writes(operator)
    assert after == before, operator.tail(30)
    kubectl("delete", "workspace", "steady", "--wait=true", "--timeout=60s")


def test_metrics(operator: Operator) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5) as rsp:
        text = rsp.read().decode()
    assert "troupe_workspace_queue_length 0.0" in text
    # the workspaces of the tests before went Provisioning -> Ready at least once
    count = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("troupe_workspace_provisioning_duration_seconds_count")
    )
    assert count >= 1
    assert "troupe_workspace_component_failures_total" in text


def test_examples_pass_a_server_side_dry_run(operator: Operator, kubevirt: None) -> None:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        out = kubectl("apply", "--dry-run=server", "-f", str(path)).stdout
        assert "(server dry run)" in out, path.name
    # the seed exactly as printed: its network block holds only comments (null)
    printed = (EXAMPLES / "workspace.yaml").read_text().replace("    isolate: true\n", "")
    assert "\n    isolate:" not in printed
    assert "(server dry run)" in kubectl("apply", "--dry-run=server", "-f", "-", input=printed).stdout
