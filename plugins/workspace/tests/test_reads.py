"""ChildKind.reads: what the status and the builders read of a workspace's children, and nothing else.

Each child is taken as the cluster holds it (what the builders applied, with the status its controller
writes), then changed by what other controllers write besides (``FOREIGN``): neither the status nor the
builders may change, and no such change may reconcile the workspace. A status or builder that starts
reading one of those fields fails the first test; a ``reads`` that leaves out what they read fails the last.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from troupe import AdmissionState, ChildKey, Children
from troupe.testing import Write, reconciles_owner, written, written_by_others
from troupe_workspace.builders import build
from troupe_workspace.config import Settings
from troupe_workspace.models import WorkspaceSpec
from troupe_workspace.plugin import WORKSPACE
from troupe_workspace.status import workspace_status

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SETTINGS = Settings(policy_namespace="ops", disk_namespace="disks", fail_after=timedelta(minutes=5))
DISK_TEMPLATE = {
    "sourceType": "registry",
    "url": "docker://r.io/db:1",
    "secretRef": "pull",
    "diskSize": "18Gi",
}
SPEC = WorkspaceSpec.model_validate(
    {
        "virtualMachines": [
            {
                "name": "db",
                "spec": {"VMDiskImageName": "db-disk", "vmDiskImage": DISK_TEMPLATE},
            }
        ],
        "containers": [{"name": "api", "image": "api:1", "ports": [{"containerPort": 8080}]}],
        "network": {"isolate": True},
    }
)
ADMITTED = AdmissionState(admitted=True, limit=2)

#: What other controllers write into these kinds besides what the workspace reads, by kind:
#: ``(path, value)``, a path as a tuple (label and annotation keys hold dots); a dict value for a list
#: goes in as one more item (a condition, a container's status).
FOREIGN: dict[str, list[Write]] = {
    "Namespace": [
        (("status", "phase"), "Active"),
        (("metadata", "labels", "kubernetes.io/metadata.name"), "ws-w"),
    ],
    "VirtualMachine": [  # KubeVirt's virt-controller
        (("status", "created"), True),
        (("status", "desiredGeneration"), 2),
        (("status", "observedGeneration"), 2),
        (("status", "runStrategy"), "Always"),
        (("status", "volumeSnapshotStatuses"), [{"name": "root", "enabled": False}]),
        (("status", "conditions", "+"), {"type": "Ready", "status": "True"}),
        (("status", "conditions", "+"), {"type": "LiveMigratable", "status": "False"}),
        (("metadata", "annotations", "kubevirt.io/latest-observed-api-version"), "v1"),
        (("metadata", "finalizers"), ["kubevirt.io/virtualMachineControllerFinalize"]),
    ],
    "Deployment": [
        (("status", "observedGeneration"), 3),
        (("status", "replicas"), 1),
        (("status", "updatedReplicas"), 1),
        (("status", "availableReplicas"), 1),
        (("status", "conditions", "+"), {"type": "Available", "status": "True"}),
        (("metadata", "annotations", "deployment.kubernetes.io/revision"), "1"),
    ],
    "Service": [(("spec", "clusterIP"), "10.96.0.12"), (("status", "loadBalancer"), {})],
    "NetworkPolicy": [(("metadata", "generation"), 1)],
    "Pod": [
        (("status", "phase"), "Running"),
        (("status", "podIP"), "10.1.2.3"),
        (("status", "hostIP"), "10.0.0.9"),
        (("status", "qosClass"), "Guaranteed"),
        (("status", "startTime"), "2026-11-26T11:59:00Z"),
        (("status", "conditions", "+"), {"type": "PodScheduled", "status": "True"}),
        (("spec", "nodeName"), "kwok-node-0"),
    ],
}


def disk(phase: str) -> dict[str, Any]:
    """The workspace's own VMDiskImage as the data-sync controller leaves it."""
    made = build(SPEC, "w", Children(), Children(), SETTINGS)
    (image,) = [m for m in made if m["kind"] == "VMDiskImage"]
    return {**image, "status": {"phase": phase, "message": "" if phase == "Ready" else "syncing 40%"}}


def pod(waiting: str | None) -> dict[str, Any]:
    state = (
        {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": "2026-11-26T11:59:30Z"}}
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "api-7d9f-x2x",
            "namespace": "ws-w",
            "labels": {"pelotech.ot/workspace": "w", "pelotech.ot/component": "api"},
            "creationTimestamp": "2026-11-26T11:58:00Z",
        },
        "spec": {"containers": [{"name": "api", "image": "api:1"}]},
        "status": {"containerStatuses": [{"name": "api", "ready": waiting is None, "state": state}]},
    }


def scene(disk_phase: str, vm: dict[str, Any] | None, ready: int, waiting: str | None) -> Children:
    """The workspace's children as observed: what the builders made, with their controllers' status."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ws-w"}}
    observed = Children({ChildKey.of(o): o for o in (namespace, disk(disk_phase))})
    made = build(SPEC, "w", observed, Children(), SETTINGS)
    children = []
    for m in made:
        if m["kind"] == "VirtualMachine" and vm is None:
            continue
        status = {
            "VirtualMachine": vm,
            "Deployment": {"replicas": 1, "readyReplicas": ready},
            "VMDiskImage": disk(disk_phase)["status"],
        }.get(m["kind"])
        children.append({**m, "status": status} if status is not None else m)
    children.append(pod(waiting))
    return Children({ChildKey.of(c): c for c in children})


SCENES = {
    "disk syncing": scene("Syncing", None, 0, "ContainerCreating"),
    "image pull failing": scene("Ready", {"printableStatus": "Provisioning"}, 0, "ImagePullBackOff"),
    "starting": scene("Ready", {"printableStatus": "Starting", "ready": False}, 0, None),
    "ready": scene("Ready", {"printableStatus": "Running", "ready": True}, 1, None),
}


@pytest.mark.parametrize("name", SCENES)
def test_what_other_controllers_write_changes_neither_status_nor_builders(name: str) -> None:
    observed = SCENES[name]
    theirs = written_by_others(observed, FOREIGN)
    for deleting in (False, True):
        assert build(SPEC, "w", theirs, Children(), SETTINGS, deleting=deleting) == build(
            SPEC, "w", observed, Children(), SETTINGS, deleting=deleting
        )
    for later in (NOW, NOW + timedelta(minutes=10)):
        assert workspace_status(SPEC, "w", {}, theirs, Children(), SETTINGS, ADMITTED, later) == (
            workspace_status(SPEC, "w", {}, observed, Children(), SETTINGS, ADMITTED, later)
        )


@pytest.mark.parametrize("name", SCENES)
def test_what_other_controllers_write_reconciles_nobody(name: str) -> None:
    observed = SCENES[name]
    theirs = written_by_others(observed, FOREIGN)
    for key, child in observed.items():
        assert not reconciles_owner(WORKSPACE, child, theirs[key]), child["kind"]


def test_each_field_the_status_reads_reconciles_the_workspace() -> None:
    observed = SCENES["starting"]
    (image,), (vm,), (deployment,) = (
        observed.of_kind(k) for k in ("VMDiskImage", "VirtualMachine", "Deployment")
    )
    for child, path, value in (
        (image, ("status", "phase"), "Failed"),
        (image, ("status", "message"), "checksum mismatch"),
        (vm, ("status", "ready"), True),
        (vm, ("status", "printableStatus"), "DataVolumeError"),
        (deployment, ("status", "readyReplicas"), 1),
        (pod(None), ("metadata", "labels"), {"pelotech.ot/component": "db"}),
        (pod(None), ("metadata", "creationTimestamp"), "2026-11-26T11:59:00Z"),
        (
            pod("ContainerCreating"),
            ("status", "containerStatuses"),
            pod("ImagePullBackOff")["status"]["containerStatuses"],
        ),
    ):
        assert reconciles_owner(WORKSPACE, child, written(child, (path, value))), (child["kind"], path)


def test_every_child_kind_declares_what_it_reads() -> None:
    assert all(c.reads is not None for c in WORKSPACE.children)
