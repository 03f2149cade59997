"""A workspace's status from what is observed: per-VM and per-container state, phases, conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from troupe import AdmissionState, ChildKey, Children, StatusUpdate
from troupe_workspace.config import Settings
from troupe_workspace.models import WorkspaceSpec
from troupe_workspace.status import provisioning_seconds, workspace_status

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SETTINGS = Settings(policy_namespace="ops", disk_namespace="disks", fail_after=timedelta(minutes=5))
SPEC = WorkspaceSpec.model_validate(
    {
        "virtualMachines": [{"name": "db", "spec": {"VMDiskImageName": "db-disk"}}],
        "containers": [{"name": "api", "image": "api:1", "ports": [{"containerPort": 8080}]}],
    }
)
ADMITTED = AdmissionState(admitted=True, limit=2)
NONE = Children()


def observed(*objs: dict[str, Any]) -> Children:
    return Children({ChildKey.of(o): o for o in objs})


def disk(phase: str | None, message: str = "") -> dict[str, Any]:
    status = {"phase": phase, "message": message} if phase else {}
    return {
        "apiVersion": "crd.pelotech.ot/v1alpha1",
        "kind": "VMDiskImage",
        "metadata": {"name": "db-disk", "namespace": "disks"},
        "status": status,
    }


def policy(value: str | None) -> dict[str, Any]:
    data = {} if value is None else {"workspaceConcurrency": value}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "sync-operator-policy", "namespace": "ops"},
        "data": data,
    }


def vm(printable: str, ready: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": "db", "namespace": "ws-w"},
        "status": {"printableStatus": printable, "ready": ready},
    }


def deployment(ready: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "ws-w"},
        "status": {"readyReplicas": ready},
    }


def pod(reason: str, age: timedelta) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "api-1",
            "namespace": "ws-w",
            "labels": {"pelotech.ot/component": "api"},
            "creationTimestamp": (NOW - age).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "status": {"containerStatuses": [{"name": "api", "state": {"waiting": {"reason": reason}}}]},
    }


def status(
    children: Children = NONE,
    related: Children = NONE,
    admission: AdmissionState = ADMITTED,
    previous: dict[str, Any] | None = None,
) -> StatusUpdate:
    return workspace_status(SPEC, "w", previous or {}, children, related, SETTINGS, admission, NOW)


def cond(update: Any, type_: str) -> Any:
    return next(c for c in update.conditions if c.type == type_)


def test_queued_stays_provisioning_with_its_place_in_line() -> None:
    update = status(admission=AdmissionState(admitted=False, position=2, limit=1))
    assert update.phase == "Provisioning"
    assert cond(update, "Queued").status == "True"
    assert "number 2 in line (limit 1)" in cond(update, "Queued").message
    assert update.fields["provisioningSince"] is None


@pytest.mark.parametrize(
    ("disk_phase", "vm_phase"),
    [
        ("Queued", "Queued"),
        ("Syncing", "Syncing"),
        ("RetryableFailure", "RetryableFailure"),
        (None, "Queued"),
    ],
)
def test_a_vm_shows_its_disk_phase_while_it_syncs(disk_phase: str | None, vm_phase: str) -> None:
    update = status(related=observed(disk(disk_phase)))
    (entry,) = update.fields["resourceStatus"]["virtualMachines"]
    assert entry["phase"] == vm_phase and update.phase == "Provisioning"
    assert update.fields["vms"] == "0/1" and update.fields["containers"] == "0/1"


def test_a_missing_disk_without_template_is_a_condition_naming_it() -> None:
    update = status()
    assert update.fields["resourceStatus"]["virtualMachines"] == [{"name": "db", "phase": "DiskImageMissing"}]
    missing = cond(update, "DiskImageMissing")
    assert missing.status == "True" and "VMDiskImage db-disk not found in namespace disks" in missing.message


def test_ready_when_every_vm_and_container_is() -> None:
    update = status(observed(vm("Running", ready=True), deployment(1)), observed(disk("Ready"), policy("1")))
    assert update.phase == "Ready" and cond(update, "Ready").status == "True"
    assert update.fields["vms"] == "1/1" and update.fields["containers"] == "1/1"
    assert update.fields["resourceStatus"] == {
        "virtualMachines": [{"name": "db", "phase": "Running"}],
        "containers": [{"name": "api", "status": "Running"}],
    }
    assert update.fields["readyAt"] == "2026-11-26T12:00:00Z"
    assert cond(update, "PolicyDefaulted").status == "False"


def test_a_starting_vm_shows_its_printable_status() -> None:
    update = status(observed(vm("Starting"), deployment(1)), observed(disk("Ready")))
    assert update.fields["resourceStatus"]["virtualMachines"] == [{"name": "db", "phase": "Starting"}]
    assert update.phase == "Provisioning"


def test_a_failed_disk_fails_the_workspace_naming_it_and_recovery_returns() -> None:
    failed = status(observed(deployment(1)), observed(disk("Failed", "s3: access denied")))
    assert failed.phase == "Failed"
    ready = cond(failed, "Ready")
    assert (
        ready.reason == "ComponentFailed" and "disk image db-disk Failed: s3: access denied" in ready.message
    )
    running = status(observed(vm("Running", True), deployment(1)), observed(disk("Failed", "resync")))
    assert (
        running.phase == "Failed"
        and running.fields["resourceStatus"]["virtualMachines"][0]["phase"] == "Failed"
    )
    back = status(observed(vm("Running", True), deployment(1)), observed(disk("Ready")))
    assert back.phase == "Ready"


def test_a_data_volume_error_fails_the_workspace() -> None:
    update = status(observed(vm("DataVolumeError"), deployment(1)), observed(disk("Ready")))
    assert update.phase == "Failed" and "DataVolumeError" in cond(update, "Ready").message


def test_an_image_pull_fails_only_after_the_grace_period() -> None:
    young = status(
        observed(deployment(0), pod("ImagePullBackOff", timedelta(minutes=1))), observed(disk("Ready"))
    )
    assert young.fields["resourceStatus"]["containers"] == [
        {"name": "api", "status": "Pending", "reason": "ImagePullBackOff"}
    ]
    assert young.phase == "Provisioning" and young.requeue_after == pytest.approx(241)
    old = status(
        observed(deployment(0), pod("ImagePullBackOff", timedelta(minutes=6))), observed(disk("Ready"))
    )
    assert old.phase == "Failed" and "container api: ImagePullBackOff" in cond(old, "Ready").message
    hopeless = status(observed(deployment(0), pod("InvalidImageName", timedelta(0))), observed(disk("Ready")))
    assert hopeless.phase == "Failed"


@pytest.mark.parametrize("value", [None, "", "many", "0", "-1"])
def test_a_missing_or_bad_policy_falls_back_to_the_default_with_a_condition(value: str | None) -> None:
    related = observed(policy(value)) if value is not None else Children()
    defaulted = cond(status(related=related), "PolicyDefaulted")
    assert defaulted.status == "True" and "using the default 2" in defaulted.message


def test_provisioning_time_is_observed_once() -> None:
    new = {"phase": "Ready", "provisioningSince": "2026-11-26T12:00:00Z", "readyAt": "2026-11-26T12:01:30Z"}
    assert provisioning_seconds({"phase": "Provisioning"}, new) == 90
    assert provisioning_seconds(new, new) is None
