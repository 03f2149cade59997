"""Hook implementations of the workshop operator: the Workshop kind, its children, status and teardown."""

from __future__ import annotations

from typing import Any

from troupe import (
    ChildKind,
    KindSpec,
    Manifest,
    OperatorHandle,
    PrinterColumn,
    ReconcileContext,
    StatusUpdate,
    hookimpl,
)
from troupe_workshop import config
from troupe_workshop.builders import build
from troupe_workshop.metrics import WorkshopMetrics
from troupe_workshop.models import WorkshopSpec, WorkshopStatus
from troupe_workshop.status import workshop_status
from troupe_workshop.timeline import window_errors

WORKSHOP = KindSpec(
    operator="workshop",
    group="orchestra.io",
    version="v1",
    kind="Workshop",
    plural="workshops",
    singular="workshop",
    spec_model=WorkshopSpec,
    status_model=WorkshopStatus,
    short_names=("ws",),
    categories=("troupe",),
    printer_columns=(
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("URL", ".status.url"),
        PrinterColumn("Expires", ".status.expiresAt"),
        PrinterColumn("Participants", ".status.participants[*].name", priority=1),
    ),
    # ``reads``: what status.py and builders.py read of each child beyond what they applied; the other
    # controllers' updates (a Deployment's conditions and revision, a pod's IPs and node, a claim's volume
    # name and binding annotations) are no reason to reconcile.
    children=(
        ChildKind(
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            prune=False,
            reads=("status.phase", "metadata.creationTimestamp"),
        ),
        ChildKind("v1", "Secret", "secrets", reads=()),
        ChildKind("apps/v1", "Deployment", "deployments", reads=("status.readyReplicas", "status.replicas")),
        ChildKind("v1", "Service", "services", reads=()),
        ChildKind("networking.k8s.io/v1", "Ingress", "ingresses", reads=()),
        # Never built: the RStudio pods are watched for health through the same owner annotation.
        ChildKind(
            "v1",
            "Pod",
            "pods",
            prune=False,
            observe_only=True,
            reads=(
                "metadata.labels",
                "metadata.creationTimestamp",
                "spec.containers",
                "status.conditions.Ready.status",
                "status.containerStatuses",
                "status.startTime",
            ),
        ),
    ),
    description="An RStudio workshop with a lifetime: instances per participant, an Ingress, expiry.",
    # A start is two bursts of the controllers' work: the pod appearing and the Deployment counting it;
    # then the claim binding, the pod running and the Deployment ready. One reconcile each, 1.5 s later
    # at most, instead of one per event (measured: 4.9 a Workshop -> 3). On a busy cluster a burst can
    # outlast a second: with 1 s, bursts of 200 took 3.06-3.08 reconciles a Workshop once children were
    # created by POST (answered sooner); 2.90-2.97 with 1.5 s.
    batch_window=1.5,
    # No finalizer (one write per Workshop less): deleted by hand, garbage collection removes what it
    # owns, each RStudio pod still gets its grace period and preStop suspend (sessions are saved), and
    # retained claims carry no owner reference. The ordered teardown is the expiry's (status.py).
)

_settings: config.Settings | None = None
_metrics: WorkshopMetrics | None = None


def settings() -> config.Settings:
    global _settings
    if _settings is None:
        _settings = config.from_env()
    return _settings


@hookimpl
def troupe_kinds() -> list[KindSpec]:
    return [WORKSHOP]


@hookimpl
def troupe_validate(ctx: ReconcileContext[WorkshopSpec]) -> list[str] | None:
    provisioned = bool(ctx.children) or bool((ctx.body.get("status") or {}).get("startedAt"))
    return window_errors(ctx.spec, ctx.body, provisioned)


@hookimpl
def troupe_build_resources(ctx: ReconcileContext[WorkshopSpec]) -> list[Manifest] | None:
    return build(ctx.spec, ctx.body, ctx.children, settings(), ctx.now, deleting=ctx.deleting)


@hookimpl
def troupe_aggregate_status(ctx: ReconcileContext[WorkshopSpec]) -> StatusUpdate | None:
    return workshop_status(ctx.spec, ctx.body, ctx.children, settings(), ctx.now, deleting=ctx.deleting)


@hookimpl
def troupe_status_changed(
    ctx: ReconcileContext[WorkshopSpec], old: dict[str, Any], new: dict[str, Any]
) -> None:
    if _metrics is not None:
        _metrics.observe(ctx.body, old, new, ctx.now)


@hookimpl
def troupe_register_handlers(handle: OperatorHandle) -> None:
    global _metrics
    if "workshop" not in handle.operators:
        return
    settings()

    def statuses() -> list[dict[str, Any]]:
        return [body.get("status") or {} for body in handle.objects(WORKSHOP)]

    _metrics = WorkshopMetrics(handle.metrics("workshop"), statuses)
