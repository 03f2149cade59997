"""Hook implementations of the workspace operator: the Workspace kind, its children, status, disk sweeper."""

from __future__ import annotations

from typing import Any

import kopf

from troupe import (
    Admission,
    ChildKind,
    Children,
    KindSpec,
    Manifest,
    OperatorHandle,
    PrinterColumn,
    ReconcileContext,
    RelatedKind,
    StatusUpdate,
    hookimpl,
)
from troupe_workspace import config
from troupe_workspace.builders import VM_API, VMDI_API, build
from troupe_workspace.metrics import WorkspaceMetrics, queued
from troupe_workspace.models import WorkspaceSpec, WorkspaceStatus
from troupe_workspace.status import workspace_status
from troupe_workspace.sweeper import Sweeper

DATA_SYNC_HINT = (
    "install the data-sync operator's VMDiskImage CRD "
    "(vmdiskimages.crd.pelotech.ot, github.com/pelotech/data-sync-operator)"
)
KUBEVIRT_HINT = "install KubeVirt (virtualmachines.kubevirt.io) and CDI"

_settings: config.Settings | None = None
_metrics: WorkspaceMetrics | None = None


def settings() -> config.Settings:
    global _settings
    if _settings is None:
        _settings = config.from_env()
    return _settings


def policy_references(body: Manifest) -> list[tuple[str | None, str]]:
    s = settings()
    return [(s.policy_namespace, s.policy_name)]


def disk_references(body: Manifest) -> list[tuple[str | None, str]]:
    """The VMDiskImages a workspace's VMs boot from (pure and total: a malformed entry names nothing)."""
    vms = ((body.get("spec") or {}).get("virtualMachines")) or []
    names = {
        str(((vm or {}).get("spec") or {}).get("VMDiskImageName") or "") for vm in vms if isinstance(vm, dict)
    }
    return [(settings().disk_namespace, name) for name in sorted(names) if name]


def limit(related: Children) -> int:
    s = settings()
    policy = related.named("ConfigMap", s.policy_name, s.policy_namespace)
    return config.concurrency(
        None if policy is None else dict(policy.get("data") or {}), s.default_concurrency
    )[0]


def phase_of(body: Manifest) -> str | None:
    return (body.get("status") or {}).get("phase")


#: The disks made from a VM's template (the sweeper follows them through the core's stream of this kind).
DISK_IMAGES = ChildKind(
    VMDI_API,
    "VMDiskImage",
    "vmdiskimages",
    optional=True,
    missing_hint=DATA_SYNC_HINT,
    reads=("status.phase", "status.message", "spec.diskSize"),
)

WORKSPACE = KindSpec(
    operator="workspace",
    group="pelotech.ot",
    version="v1alpha1",
    kind="Workspace",
    plural="workspaces",
    singular="workspace",
    scope="Cluster",
    spec_model=WorkspaceSpec,
    status_model=WorkspaceStatus,
    short_names=("wksp",),
    categories=("troupe",),
    printer_columns=(
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("VMs", ".status.vms"),
        PrinterColumn("Containers", ".status.containers"),
        PrinterColumn("Namespace", ".status.namespace", priority=1),
        PrinterColumn("Message", ".status.message", priority=1),
    ),
    # ``reads``: what status.py and builders.py read of each child beyond what they applied (and beyond
    # its coming and going); the rest of what other controllers write (a VM's conditions and generations,
    # a Deployment's conditions and revision, a pod's IPs, node and phase) reconciles nobody.
    children=(
        ChildKind("v1", "Namespace", "namespaces", namespaced=False, reads=()),
        DISK_IMAGES,
        ChildKind(
            VM_API,
            "VirtualMachine",
            "virtualmachines",
            optional=True,
            missing_hint=KUBEVIRT_HINT,
            reads=("status.printableStatus", "status.ready"),
        ),
        ChildKind("apps/v1", "Deployment", "deployments", reads=("status.readyReplicas",)),
        ChildKind("v1", "Service", "services", reads=()),
        ChildKind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", reads=()),
        # Never built: the containers' pods, watched for their waiting reasons (ImagePullBackOff...).
        ChildKind(
            "v1",
            "Pod",
            "pods",
            prune=False,
            observe_only=True,
            reads=("metadata.labels", "metadata.creationTimestamp", "status.containerStatuses"),
        ),
    ),
    related=(
        RelatedKind("v1", "ConfigMap", "configmaps", references=policy_references),
        RelatedKind(
            VMDI_API,
            "VMDiskImage",
            "vmdiskimages",
            references=disk_references,
            optional=True,
            missing_hint=DATA_SYNC_HINT,
        ),
    ),
    admission=Admission(
        limit=limit,
        holding=lambda body: phase_of(body) == "Provisioning" and not queued(body.get("status") or {}),
        waiting=lambda body: phase_of(body) is None or queued(body.get("status") or {}),
    ),
    description="VMs and containers in one isolated environment: a namespace, KubeVirt VMs on synced disks, "
    "Deployments and Services, an optional NetworkPolicy.",
    # Ordered teardown: VMs, workloads and the policy go before the namespace.
    finalize=True,
    # No batch window: ``reads`` alone leaves a start few reconciles (measured on the local cluster, 10
    # workspaces of one container: 6.5 a workspace -> 3.8, the same with a 1 s window), while a window
    # delays each Ready, and so each admission after it (a provisioning slot frees on Ready): all 10 Ready
    # after 5.7-6.4 s with a 1 s window, 1.8-2.7 s without.
)


@hookimpl
def troupe_kinds() -> list[KindSpec]:
    return [WORKSPACE]


@hookimpl
def troupe_build_resources(ctx: ReconcileContext[WorkspaceSpec]) -> list[Manifest]:
    return build(
        ctx.spec,
        ctx.name,
        ctx.children,
        ctx.related,
        settings(),
        admitted=ctx.admission.admitted or ctx.deleting,
        deleting=ctx.deleting,
    )


@hookimpl
def troupe_aggregate_status(ctx: ReconcileContext[WorkspaceSpec]) -> StatusUpdate:
    return workspace_status(
        ctx.spec, ctx.name, ctx.status, ctx.children, ctx.related, settings(), ctx.admission, ctx.now
    )


@hookimpl
def troupe_status_changed(
    ctx: ReconcileContext[WorkspaceSpec], old: dict[str, Any], new: dict[str, Any]
) -> None:
    if _metrics is not None:
        _metrics.observe(old, new)


#: What must be gone before the namespace may go (the finalizer holds until then).
TEARDOWN_FIRST = ("VirtualMachine", "Deployment", "Service", "NetworkPolicy")


@hookimpl
def troupe_finalize(ctx: ReconcileContext[WorkspaceSpec]) -> None:
    left = [kind for kind in TEARDOWN_FIRST if ctx.children.of_kind(kind)]
    if left:
        raise kopf.TemporaryError(f"tearing down in order: {', '.join(left)} left", delay=2)


@hookimpl
def troupe_register_handlers(handle: OperatorHandle) -> None:
    global _metrics
    if "workspace" not in handle.operators:
        return

    def statuses() -> list[dict[str, Any]]:
        return [body.get("status") or {} for body in handle.objects(WORKSPACE)]

    _metrics = WorkspaceMetrics(handle.metrics("workspace"), statuses)
    Sweeper(handle, WORKSPACE, DISK_IMAGES, settings().disk_namespace, disk_references)
