"""The workspace's pure builders: the seed's example, every optional field, disks, teardown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from troupe import OWNER_ANNOTATION, RETAIN_ANNOTATION, ChildKey, Children
from troupe_workspace.builders import CREATED_BY_LABEL, WORKSPACE_LABEL, build, namespace_of
from troupe_workspace.config import Settings
from troupe_workspace.models import WorkspaceSpec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SETTINGS = Settings(policy_namespace="ops", disk_namespace="disks")


def observed(*objs: dict[str, Any]) -> Children:
    return Children({ChildKey.of(o): o for o in objs})


def ns(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def example(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return doc


def seed() -> WorkspaceSpec:
    return WorkspaceSpec.model_validate(example("workspace.yaml")["spec"])


def by_kind(manifests: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for m in manifests:
        out.setdefault(m["kind"], []).append(m)
    return out


def disk(name: str, phase: str | None, size: str = "10Gi", **meta: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "crd.pelotech.ot/v1alpha1",
        "kind": "VMDiskImage",
        "metadata": {"name": name, "namespace": "disks", **meta},
        "spec": {"diskSize": size, "sourceType": "blank", "secretRef": "s"},
    }
    if phase:
        body["status"] = {"phase": phase}
    return body


def test_seed_before_its_disks_exist_builds_namespace_workloads_and_policy() -> None:
    kids = by_kind(
        build(
            seed(),
            "data-analysis-environment-1",
            observed(ns("ws-data-analysis-environment-1")),
            Children(),
            SETTINGS,
        )
    )
    assert sorted(kids) == ["Deployment", "Namespace", "NetworkPolicy", "Service"]
    (namespace,) = kids["Namespace"]
    assert namespace["metadata"]["name"] == "ws-data-analysis-environment-1"
    (dep,) = kids["Deployment"]
    assert dep["metadata"] == {
        "name": "api-server",
        "namespace": "ws-data-analysis-environment-1",
        "labels": {WORKSPACE_LABEL: "data-analysis-environment-1", "pelotech.ot/component": "api-server"},
    }
    template = dep["spec"]["template"]
    assert template["metadata"]["annotations"] == {
        OWNER_ANNOTATION: "Workspace.pelotech.ot//data-analysis-environment-1"
    }
    assert dep["spec"]["selector"]["matchLabels"] == template["metadata"]["labels"]
    assert template["spec"]["containers"] == [
        {
            "name": "api-server",
            "image": "my-registry/api-server:3.1.0",
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        }
    ]
    (svc,) = kids["Service"]
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"] == [{"name": "tcp-8080", "port": 8080, "targetPort": 8080, "protocol": "TCP"}]
    (policy,) = kids["NetworkPolicy"]
    members = {"podSelector": {"matchLabels": {WORKSPACE_LABEL: "data-analysis-environment-1"}}}
    assert policy["spec"]["podSelector"] == members["podSelector"]
    assert policy["spec"]["ingress"] == [{"from": [members]}]
    assert policy["spec"]["egress"][0] == {"to": [members]}
    assert {p["port"] for p in policy["spec"]["egress"][1]["ports"]} == {53}


def test_a_vm_is_built_once_its_disk_is_ready() -> None:
    spec = seed()
    related = observed(disk("database-vmdi", "Ready", "18Gi"), disk("analytics-vmdi", "Syncing"))
    kids = by_kind(build(spec, "w", observed(ns("ws-w")), related, SETTINGS))
    (vm,) = kids["VirtualMachine"]
    assert vm["metadata"]["name"] == "database-vm" and vm["metadata"]["namespace"] == "ws-w"
    assert vm["spec"]["runStrategy"] == "Always"
    (dv,) = vm["spec"]["dataVolumeTemplates"]
    assert dv["spec"]["source"] == {"snapshot": {"namespace": "disks", "name": "database-vmdi"}}
    assert dv["spec"]["storage"]["resources"]["requests"]["storage"] == "18Gi"
    template = vm["spec"]["template"]
    assert template["metadata"]["labels"][WORKSPACE_LABEL] == "w"  # reaches the launcher pod
    assert template["spec"]["volumes"] == [{"name": "root", "dataVolume": {"name": dv["metadata"]["name"]}}]
    assert template["spec"]["domain"]["cpu"] == {"cores": 1}
    assert template["spec"]["domain"]["memory"] == {"guest": "2Gi"}
    assert "VMDiskImage" not in kids  # existing disks are used as they are


def test_a_vm_is_kept_while_its_disk_resyncs() -> None:
    spec = seed()
    first = build(spec, "w", observed(ns("ws-w")), observed(disk("database-vmdi", "Ready")), SETTINGS)
    (vm,) = by_kind(first)["VirtualMachine"]
    again = build(spec, "w", observed(ns("ws-w"), vm), observed(disk("database-vmdi", "Syncing")), SETTINGS)
    assert by_kind(again)["VirtualMachine"] == [vm]
    gone = build(spec, "w", observed(ns("ws-w"), vm), Children(), SETTINGS)
    (kept,) = by_kind(gone)["VirtualMachine"]
    assert kept["spec"]["dataVolumeTemplates"] == vm["spec"]["dataVolumeTemplates"]


def test_a_disk_template_creates_the_missing_disk_retained_and_labelled() -> None:
    spec = WorkspaceSpec.model_validate(example("workspace-with-disk-template.yaml")["spec"])
    kids = by_kind(build(spec, "lab-1", observed(ns("lab-1")), Children(), SETTINGS))
    (vmdi,) = kids["VMDiskImage"]
    assert vmdi["metadata"] == {
        "name": "ubuntu-2004-router",
        "namespace": "disks",
        "labels": {CREATED_BY_LABEL: "lab-1"},
        "annotations": {RETAIN_ANNOTATION: "true"},
    }
    assert vmdi["spec"] == {
        "sourceType": "registry",
        "url": "docker://registry.example.org/disks/ubuntu-2004-router:2.1.2",
        "secretRef": "registry-credentials",
        "diskSize": "18Gi",
    }
    assert kids["Namespace"][0]["metadata"]["name"] == "lab-1"
    assert "NetworkPolicy" not in kids  # isolate: false
    assert [s["metadata"]["name"] for s in kids["Service"]] == ["dns"]  # ansible has no ports
    ansible = next(d for d in kids["Deployment"] if d["metadata"]["name"] == "ansible")
    container = ansible["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [{"name": "DEBUG", "value": "true"}]
    assert container["resources"] == {
        "requests": {"cpu": "384m", "memory": "2Gi"},
        "limits": {"cpu": "384m", "memory": "2Gi"},
    }
    # someone else's disk of that name exists: used as it is, not created
    theirs = build(spec, "lab-1", Children(), observed(disk("ubuntu-2004-router", "Ready")), SETTINGS)
    assert "VMDiskImage" not in by_kind(theirs)


def test_our_disk_stays_returned_when_no_vm_names_it_any_more() -> None:
    ours = disk("old", "Ready")
    kids = by_kind(build(WorkspaceSpec(), "w", observed(ours), Children(), SETTINGS))
    (kept,) = kids["VMDiskImage"]
    assert (
        kept["metadata"]["name"] == "old" and "spec" not in kept
    )  # kept, never rewritten; the sweeper decides


def test_not_admitted_builds_nothing_and_teardown_keeps_namespace_and_disks() -> None:
    assert build(seed(), "w", Children(), Children(), SETTINGS, admitted=False) == []
    ours = disk("d", "Ready")
    left = build(seed(), "w", observed(ours), Children(), SETTINGS, deleting=True)
    assert [m["kind"] for m in left] == ["Namespace", "VMDiskImage"]


def test_namespace_names_are_injective_and_valid() -> None:
    assert namespace_of(WorkspaceSpec(), "a.b") != namespace_of(WorkspaceSpec(), "a-b")
    assert namespace_of(WorkspaceSpec(namespace="mine"), "x") == "mine"
    long = namespace_of(WorkspaceSpec(), "x" * 250)
    assert len(long) <= 63


def test_isolation_toggles_the_policy() -> None:
    on = WorkspaceSpec.model_validate({"network": {"isolate": True}})
    off = WorkspaceSpec.model_validate({"network": {"isolate": False}})
    assert "NetworkPolicy" in by_kind(build(on, "w", observed(ns("ws-w")), Children(), SETTINGS))
    assert "NetworkPolicy" not in by_kind(build(off, "w", Children(), Children(), SETTINGS))
    assert "NetworkPolicy" not in by_kind(build(WorkspaceSpec(), "w", Children(), Children(), SETTINGS))


def test_nothing_goes_into_a_namespace_not_observed_as_ours() -> None:
    first = build(seed(), "w", Children(), Children(), SETTINGS)
    assert [m["kind"] for m in first] == ["Namespace"]
