"""Hook implementations of the devserver operator: DevServer (reconciled) and DevServerFlavor (read)."""

from __future__ import annotations

import re
from typing import Any

from troupe import (
    ChildKind,
    KindSpec,
    Manifest,
    OperatorHandle,
    PrinterColumn,
    ReconcileContext,
    RelatedKind,
    StatusUpdate,
    hookimpl,
)
from troupe_devserver import config
from troupe_devserver.builders import Flavor, build, flavor_of, waiting
from troupe_devserver.lifecycle import Plan, plan
from troupe_devserver.metrics import DevServerMetrics
from troupe_devserver.models import DevServerFlavorSpec, DevServerSpec, DevServerStatus
from troupe_devserver.status import devserver_status

#: The StatefulSet and its pod are named after the server: a DNS-1035 label, short enough that the pod's
#: controller-revision-hash label (name + "-" + 10 characters) stays within 63.
MAX_NAME = 52
NAME_PATTERN = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def flavor_refs(body: Manifest) -> list[tuple[str | None, str]]:
    flavor = (body.get("spec") or {}).get("flavor")
    return [(None, flavor)] if isinstance(flavor, str) and flavor else []


def shared_claim_refs(body: Manifest) -> list[tuple[str | None, str]]:
    claim = (body.get("spec") or {}).get("sharedVolumeClaimName")
    namespace = (body.get("metadata") or {}).get("namespace")
    return [(namespace, claim)] if isinstance(claim, str) and claim and namespace else []


DEVSERVER_FLAVOR = KindSpec(
    operator="devserver",
    group="devserver.io",
    version="v1",
    kind="DevServerFlavor",
    plural="devserverflavors",
    singular="devserverflavor",
    scope="Cluster",
    spec_model=DevServerFlavorSpec,
    short_names=("dsf",),
    categories=("troupe",),
    printer_columns=(
        PrinterColumn("CPU", ".spec.resources.requests.cpu"),
        PrinterColumn("Memory", ".spec.resources.requests.memory"),
        PrinterColumn("GPU", ".spec.resources.limits.nvidia\\.com/gpu"),
    ),
    description="A size of DevServer: compute and GPU of its container, and the nodes it may run on.",
    # Configuration only: read by DevServers as a related kind, never reconciled itself.
    reconcile=False,
)

DEVSERVER = KindSpec(
    operator="devserver",
    group="devserver.io",
    version="v1",
    kind="DevServer",
    plural="devservers",
    singular="devserver",
    spec_model=DevServerSpec,
    status_model=DevServerStatus,
    short_names=("ds",),
    categories=("troupe",),
    printer_columns=(
        PrinterColumn("Owner", ".spec.owner"),
        PrinterColumn("Flavor", ".spec.flavor"),
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("SSH", ".status.ssh.command"),
        PrinterColumn("Next stop", ".status.nextStop", priority=1),
    ),
    # ``reads``: what status.py and builders.py read of each child beyond what they applied (and beyond
    # its coming and going); the rest of what other controllers write (a StatefulSet's replica counts and
    # revisions, a pod's IP, phase and other conditions, a claim's volume and capacity) reconciles nobody.
    children=(
        ChildKind("v1", "Secret", "secrets", reads=()),
        # ssh_endpoint: the node port the API server allocates, and a load balancer's address
        ChildKind("v1", "Service", "services", reads=("spec.ports", "status.loadBalancer")),
        # flavor_of: the flavor recorded on it (its own annotation, read whole: the key holds dots)
        ChildKind("apps/v1", "StatefulSet", "statefulsets", reads=("metadata.annotations",)),
        # Made by the StatefulSet controller from the templates, which carry the owner annotation.
        ChildKind(
            "v1",
            "Pod",
            "pods",
            prune=False,
            observe_only=True,
            reads=(
                "status.conditions.Ready.status",
                "status.conditions.PodScheduled",
                "status.initContainerStatuses",
                "status.containerStatuses",
                "status.hostIP",
                "spec.nodeName",
            ),
        ),
        # The home: never deleted by the operator (the StatefulSet's retention policy decides).
        ChildKind(
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            prune=False,
            observe_only=True,
            reads=("status.phase",),
        ),
    ),
    related=(
        RelatedKind(
            "devserver.io/v1", "DevServerFlavor", "devserverflavors", references=flavor_refs, namespaced=False
        ),
        RelatedKind("v1", "PersistentVolumeClaim", "persistentvolumeclaims", references=shared_claim_refs),
    ),
    description="A personal development machine: sshd with a persistent home, sized by a DevServerFlavor.",
    # A start is a burst of the controllers' work, each step under a second: the pod and its claim
    # appearing, the claim bound, the pod scheduled, its init container and sshd starting, Ready. One
    # reconcile per burst, the Running phase a second later at most, on a start of several seconds
    # (measured on the local cluster, 20 at once: 10-13 reconciles a server -> 6 with ``reads`` -> 3 with
    # the window; no admission here, so no delay adds up across servers).
    batch_window=1.0,
)

_settings: config.Settings | None = None
_metrics: DevServerMetrics | None = None


def settings() -> config.Settings:
    global _settings
    if _settings is None:
        _settings = config.from_env()
    return _settings


def _plan(ctx: ReconcileContext[DevServerSpec], flavor: Flavor | None) -> Plan:
    blocked = waiting(ctx.spec, flavor, _shared_present(ctx), ctx.children)
    return plan(ctx.spec, ctx.status, ctx.generation, ctx.now, waiting=blocked)


def _shared_present(ctx: ReconcileContext[DevServerSpec]) -> bool:
    name = ctx.spec.shared_volume_claim_name
    return (
        bool(name)
        and ctx.related.named("PersistentVolumeClaim", name or "", namespace=ctx.namespace) is not None
    )


@hookimpl
def troupe_kinds() -> list[KindSpec]:
    return [DEVSERVER, DEVSERVER_FLAVOR]


@hookimpl
def troupe_validate(ctx: ReconcileContext[DevServerSpec]) -> list[str]:
    if len(ctx.name) > MAX_NAME or not NAME_PATTERN.match(ctx.name):
        return [
            f"metadata.name {ctx.name!r} names the server's StatefulSet and pod: use a lower-case DNS label "
            f"that starts with a letter, at most {MAX_NAME} characters (create it again under such a name)"
        ]
    return []


@hookimpl
def troupe_build_resources(ctx: ReconcileContext[DevServerSpec]) -> list[Manifest]:
    flavor = flavor_of(ctx.spec, ctx.related, ctx.children)
    return build(
        ctx.spec, ctx.body, flavor, _shared_present(ctx), ctx.children, settings(), run=_plan(ctx, flavor).run
    )


@hookimpl
def troupe_aggregate_status(ctx: ReconcileContext[DevServerSpec]) -> StatusUpdate:
    flavor = flavor_of(ctx.spec, ctx.related, ctx.children)
    return devserver_status(
        ctx.spec,
        ctx.body,
        flavor,
        _shared_present(ctx),
        ctx.children,
        _plan(ctx, flavor),
        settings(),
        ctx.now,
    )


@hookimpl
def troupe_status_changed(
    ctx: ReconcileContext[DevServerSpec], old: dict[str, Any], new: dict[str, Any]
) -> None:
    if _metrics is not None:
        _metrics.observe(ctx.body, old, new, ctx.now)


@hookimpl
def troupe_register_handlers(handle: OperatorHandle) -> None:
    global _metrics
    if "devserver" not in handle.operators:
        return
    settings()
    _metrics = DevServerMetrics(handle.metrics("devserver"), lambda: list(handle.objects(DEVSERVER)))
