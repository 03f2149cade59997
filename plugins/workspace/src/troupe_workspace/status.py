"""The status of a Workspace from what is observed: per-component state, phase, conditions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from troupe import AdmissionState, Children, Condition, Manifest, StatusUpdate, isoformat, parse_time
from troupe_workspace.builders import COMPONENT_LABEL, disk_of, disk_phase, namespace_of
from troupe_workspace.config import Settings, concurrency
from troupe_workspace.models import WorkspaceSpec

#: Waiting reasons of a container that end the workspace Failed once they outlast ``fail_at``.
STUCK = {"ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff", "CreateContainerConfigError"}
#: Waiting reasons that no wait will cure.
HOPELESS = {"InvalidImageName", "ErrImageNeverPull"}
#: Disk phases that are still on their way (shown as the VM's phase).
DISK_SYNCING = {"Queued", "Syncing", "RetryableFailure"}


@dataclass
class Findings:
    vms: list[dict[str, Any]] = field(default_factory=list)
    containers: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    missing_disks: list[str] = field(default_factory=list)
    recheck: float | None = None

    def later(self, seconds: float) -> None:
        self.recheck = seconds if self.recheck is None else min(self.recheck, seconds)


def vm_states(
    spec: WorkspaceSpec, name: str, children: Children, related: Children, settings: Settings, found: Findings
) -> None:
    namespace = namespace_of(spec, name)
    for vm in spec.virtual_machines:
        disk_name = vm.spec.vm_disk_image_name
        disk = disk_of(vm, related, children, settings)
        machine = children.named("VirtualMachine", vm.name, namespace)
        vm_status = (machine or {}).get("status") or {}
        entry: dict[str, Any] = {"name": vm.name}
        if disk is not None and disk_phase(disk) == "Failed":
            # a failed (re)sync fails the workspace even with a VM running: its disk is not sound
            message = str((disk.get("status") or {}).get("message") or "")
            entry["phase"] = "Failed"
            found.failures.append(
                f"VM {vm.name}: disk image {disk_name} Failed" + (f": {message}" if message else "")
            )
            if message:
                entry["message"] = message
        elif machine is not None and vm_status:
            printable = str(vm_status.get("printableStatus") or "Provisioning")
            entry["phase"] = "Running" if vm_status.get("ready") is True else printable
            if printable == "DataVolumeError":
                found.failures.append(f"VM {vm.name}: its disk could not be cloned (DataVolumeError)")
            elif entry["phase"] != "Running":
                found.waiting.append(f"VM {vm.name} ({printable})")
        elif disk is None:
            if vm.spec.vm_disk_image is None:
                entry["phase"] = "DiskImageMissing"
                found.missing_disks.append(disk_name)
            else:
                entry["phase"] = "Queued"
            found.waiting.append(f"VM {vm.name} (disk image {disk_name})")
        else:
            phase = disk_phase(disk) or "Queued"
            message = str((disk.get("status") or {}).get("message") or "")
            if phase == "Ready":
                entry["phase"] = "Provisioning"
                found.waiting.append(f"VM {vm.name} (starting)")
            else:
                entry["phase"] = phase if phase in DISK_SYNCING else "Queued"
                found.waiting.append(f"VM {vm.name} (disk image {disk_name} {entry['phase']})")
            if message and phase != "Ready":
                entry["message"] = message
        found.vms.append(entry)


def container_states(
    spec: WorkspaceSpec, name: str, children: Children, settings: Settings, now: datetime, found: Findings
) -> None:
    namespace = namespace_of(spec, name)
    pods = children.of_kind("Pod")
    for container in spec.containers:
        deployment = children.named("Deployment", container.name, namespace)
        ready = int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0)
        entry: dict[str, Any] = {"name": container.name, "status": "Pending"}
        if deployment is not None and ready >= 1:
            entry["status"] = "Running"
        else:
            mine = [
                p for p in pods if (p["metadata"].get("labels") or {}).get(COMPONENT_LABEL) == container.name
            ]
            reason, since = waiting_reason(mine)
            if reason:
                entry["reason"] = reason
                deadline = (since or now) + settings.fail_after
                if reason in HOPELESS or (reason in STUCK and now >= deadline):
                    entry["status"] = "Failed"
                    found.failures.append(f"container {container.name}: {reason}")
                elif reason in STUCK:
                    found.later((deadline - now).total_seconds() + 1)
            if entry["status"] == "Pending":
                found.waiting.append(f"container {container.name}" + (f" ({reason})" if reason else ""))
        found.containers.append(entry)


def waiting_reason(pods: list[Manifest]) -> tuple[str | None, datetime | None]:
    """The first waiting reason of a container in these pods, and since when the pod exists."""
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            reason = ((status.get("state") or {}).get("waiting") or {}).get("reason")
            if reason:
                return str(reason), parse_time(pod["metadata"].get("creationTimestamp"))
    return None, None


def policy_condition(related: Children, settings: Settings) -> Condition:
    policy = related.named("ConfigMap", settings.policy_name, settings.policy_namespace)
    data = None if policy is None else dict(policy.get("data") or {})
    limit, why = concurrency(data, settings.default_concurrency)
    where = f"{settings.policy_namespace}/{settings.policy_name}"
    if why:
        return Condition(
            type="PolicyDefaulted", status="True", reason="PolicyDefaulted", message=f"{where}: {why}"
        )
    return Condition(
        type="PolicyDefaulted",
        status="False",
        reason="PolicyRead",
        message=f"{where}: workspaceConcurrency {limit}",
    )


def ready_condition(status: str, reason: str, message: str) -> Condition:
    return Condition(type="Ready", status=status, reason=reason, message=message)  # type: ignore[arg-type]


def workspace_status(
    spec: WorkspaceSpec,
    name: str,
    previous: dict[str, Any],
    children: Children,
    related: Children,
    settings: Settings,
    admission: AdmissionState,
    now: datetime,
) -> StatusUpdate:
    namespace = namespace_of(spec, name)
    policy = policy_condition(related, settings)
    found = Findings()
    vm_states(spec, name, children, related, settings, found)
    container_states(spec, name, children, settings, now, found)
    up_vms = sum(1 for v in found.vms if v["phase"] == "Running")
    up_containers = sum(1 for c in found.containers if c["status"] == "Running")
    fields: dict[str, Any] = {
        "namespace": namespace,
        "vms": f"{up_vms}/{len(found.vms)}",
        "containers": f"{up_containers}/{len(found.containers)}",
        "resourceStatus": {"virtualMachines": found.vms, "containers": found.containers},
    }
    if not admission.admitted:
        message = (
            f"waiting for a provisioning slot: number {admission.position} in line (limit {admission.limit})"
        )
        return StatusUpdate(
            phase="Provisioning",
            conditions=[
                ready_condition("False", "Queued", message),
                Condition(type="Queued", status="True", reason="Queued", message=message),
                policy,
            ],
            fields={**fields, "message": message, "provisioningSince": None, "readyAt": None},
        )
    fields["provisioningSince"] = previous.get("provisioningSince") or isoformat(now)
    missing = Condition(
        type="DiskImageMissing",
        status="True" if found.missing_disks else "False",
        reason="DiskImageMissing" if found.missing_disks else "DiskImagesFound",
        message=(
            f"VMDiskImage {', '.join(found.missing_disks)} not found in namespace {settings.disk_namespace}: "
            "create it, or give the VM a vmDiskImage template"
            if found.missing_disks
            else ""
        ),
    )
    conditions = [Condition(type="Queued", status="False", reason="Admitted", message=""), missing, policy]
    if found.failures:
        message = "; ".join(found.failures)
        phase, ready = "Failed", ready_condition("False", "ComponentFailed", message)
    elif found.waiting:
        message = "waiting for " + ", ".join(found.waiting)
        phase, ready = "Provisioning", ready_condition("False", "Provisioning", message)
    else:
        message = "all components ready"
        phase, ready = "Ready", ready_condition("True", "Ready", message)
    fields["message"] = message
    if phase == "Ready":
        fields["readyAt"] = previous.get("readyAt") or isoformat(now)
    return StatusUpdate(
        phase=phase, conditions=[ready, *conditions], fields=fields, requeue_after=found.recheck
    )


def provisioning_seconds(previous: dict[str, Any], new: dict[str, Any]) -> float | None:
    """Seconds from admission to Ready, when this status write is the first Ready since admission."""
    if new.get("phase") != "Ready" or previous.get("phase") == "Ready":
        return None
    since, ready = parse_time(new.get("provisioningSince")), parse_time(new.get("readyAt"))
    if since is None or ready is None:
        return None
    return max((ready - since).total_seconds(), 0.0) if previous.get("readyAt") is None else None
