"""The catalyst operator's Environment kind: its namespace and guard rails, build, deploy, teardown, status.

A plugin of its own (entry point ``catalyst-environment``): its hooks only ever see Environments; the
Project kind is ``troupe_catalyst.project``."""

from __future__ import annotations

import time
from typing import Any

import kopf

from troupe import (
    Action,
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
from troupe_catalyst import config, deploy
from troupe_catalyst.builders import (
    build_job,
    ingress,
    ingress_by,
    limit_range,
    namespace,
    network_policy,
    quota_of,
    resource_quota,
    target,
)
from troupe_catalyst.metrics import CatalystMetrics
from troupe_catalyst.models import EnvironmentSpec, EnvironmentStatus, ProjectSpec
from troupe_catalyst.references import API_VERSION, OPERATOR, catalyst_kind, project_of
from troupe_catalyst.status import environment_status, wants_build_job
from troupe_catalyst.teardown import Uninstaller, namespace_pending, needs_uninstall

_settings: config.Settings | None = None
_metrics: CatalystMetrics | None = None


def settings() -> config.Settings:
    global _settings
    if _settings is None:
        _settings = config.from_env()
    return _settings


async def check_image(inputs: dict[str, Any], handle: OperatorHandle) -> dict[str, Any]:
    return await deploy.check_image(inputs, handle)


async def deploy_environment(inputs: dict[str, Any], handle: OperatorHandle) -> dict[str, Any]:
    started = time.monotonic()
    try:
        result = await deploy.deploy(inputs, handle, settings())
    except Exception as exc:
        if _metrics is not None:
            _metrics.deployed(time.monotonic() - started, str(exc) or type(exc).__name__)
        raise
    if _metrics is not None:
        _metrics.deployed(time.monotonic() - started, None)
    return result


#: What ``as_built`` reads of a child made from the Project, to keep it as it is while the Project is missing.
AS_BUILT = ("metadata.labels", "metadata.annotations", "spec")

ENVIRONMENT = catalyst_kind(
    kind="Environment",
    plural="environments",
    singular="environment",
    spec_model=EnvironmentSpec,
    status_model=EnvironmentStatus,
    short_names=("cenv",),
    printer_columns=(
        PrinterColumn("Project", ".spec.projectRef.name"),
        PrinterColumn("Type", ".spec.type"),
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("URL", ".status.url"),
        PrinterColumn("Namespace", ".status.namespace", priority=1),
        PrinterColumn("Revision", ".status.revision", type="integer", priority=1),
    ),
    # ``reads``: what status.py and the builders read of each child beyond what they applied (and beyond
    # its coming and going). The builders keep the Project's children as observed while it is missing
    # (``as_built``: labels, annotations, spec); the rest of what other controllers write (a quota's usage
    # on every pod start, an Ingress's load balancer, a running Job's pod counts) reconciles nobody.
    children=(
        ChildKind("v1", "Namespace", "namespaces", namespaced=False, reads=()),
        ChildKind("v1", "ResourceQuota", "resourcequotas", reads=AS_BUILT),
        ChildKind("v1", "LimitRange", "limitranges", reads=AS_BUILT),
        ChildKind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", reads=()),
        ChildKind("networking.k8s.io/v1", "Ingress", "ingresses", reads=AS_BUILT),
        # never deleted by the operator: a finished Job keeps its logs until ttlSecondsAfterFinished
        ChildKind(
            "batch/v1",
            "Job",
            "jobs",
            prune=False,
            reads=(
                "status.conditions",
                "status.startTime",
                "status.completionTime",
                "metadata.creationTimestamp",
            ),
        ),
    ),
    related=(
        RelatedKind(
            API_VERSION,
            "Project",
            "projects",
            references=project_of,
            missing_hint="create the Project named in spec.projectRef",
        ),
    ),
    actions=(
        Action("image", check_image, timeout=60),
        Action("deploy", deploy_environment, timeout=900),
    ),
    description="One instance of a Project (a PR preview, staging, production): namespace, build, deploy.",
    # its Namespace cannot be owned by it (cluster-scoped): the finalizer uninstalls and deletes it
    finalize=True,
    # No batch window: what is left after ``reads`` is no burst (a Namespace appearing, a build Job
    # ending), and each is what the next step waits for (the image check, the deploy).
)


def project_spec(ctx: ReconcileContext[EnvironmentSpec]) -> ProjectSpec | None:
    ref = project_of(ctx.body)
    if not ref:
        return None
    body = ctx.related.named("Project", ref[0][1], namespace=ref[0][0])
    if body is None:
        return None
    try:
        return ProjectSpec.model_validate(body.get("spec") or {})
    except ValueError:
        return None


@hookimpl
def troupe_kinds() -> list[KindSpec]:
    return [ENVIRONMENT]


@hookimpl
def troupe_build_resources(ctx: ReconcileContext[EnvironmentSpec]) -> list[Manifest] | None:
    t = target(ctx.body, ctx.spec, settings())
    own_ns = ctx.children.named("Namespace", t.namespace)
    if ctx.deleting:
        # the namespace stays until the release is uninstalled; then it goes, with all it holds
        return [namespace(t)] if own_ns is not None and needs_uninstall(ctx.body) else []
    project = project_spec(ctx)
    if project is None:
        # the Project is missing: create nothing new, keep what exists exactly as it is (fail safe)
        if own_ns is None:
            return []
        kept = [namespace(t), network_policy(t, settings())]
        kept += [as_built(c) for kind in KEPT_AS_IS for c in ctx.children.of_kind(kind)]
        return kept
    built = [namespace(t), network_policy(t, settings())]
    if ingress_by(project) == "operator":
        built.append(ingress(t, project, settings()))
    hard = quota_of(project.resources.default_quota, ctx.spec.resources.quota)
    built += [m for m in (resource_quota(t, hard), limit_range(t, hard, settings())) if m is not None]
    if wants_build_job(ctx, project, settings()):
        built.append(build_job(t, project, ctx.spec, settings()))
    return built


#: Children built from the Project: kept exactly as observed while it is missing.
KEPT_AS_IS = ("ResourceQuota", "LimitRange", "Ingress")


def as_built(observed: Manifest) -> Manifest:
    """An observed child as a builder would return it (what the API server added left out). Its label
    and annotation maps are copies: the core completes a built child in place, and the observed one is
    the cache's."""
    meta = observed["metadata"]
    return {
        "apiVersion": observed["apiVersion"],
        "kind": observed["kind"],
        "metadata": {
            "name": meta["name"],
            **({"namespace": meta["namespace"]} if "namespace" in meta else {}),
            **{k: dict(meta[k]) for k in ("labels", "annotations") if k in meta},
        },
        "spec": observed.get("spec") or {},
    }


@hookimpl
def troupe_aggregate_status(ctx: ReconcileContext[EnvironmentSpec]) -> StatusUpdate | None:
    return environment_status(ctx, project_spec(ctx), target(ctx.body, ctx.spec, settings()), settings())


@hookimpl
def troupe_finalize(ctx: ReconcileContext[EnvironmentSpec]) -> None:
    status = ctx.status
    if needs_uninstall(ctx.body):
        raise kopf.TemporaryError(f"uninstalling release {status.get('release')}", delay=5)
    if namespace_pending(ctx.body):
        raise kopf.TemporaryError(f"waiting for namespace {status.get('namespace')} to be deleted", delay=5)


@hookimpl
def troupe_status_changed(
    ctx: ReconcileContext[EnvironmentSpec], old: dict[str, Any], new: dict[str, Any]
) -> None:
    if _metrics is not None:
        _metrics.observe(ctx.body, old, new)


@hookimpl
def troupe_register_handlers(handle: OperatorHandle) -> None:
    global _metrics
    if ENVIRONMENT not in handle.kinds:
        return
    _metrics = CatalystMetrics(handle.metrics(OPERATOR))
    uninstaller = Uninstaller(handle, settings)
    # the core's own stream of Environments: a deleting one starts its uninstall task
    handle.on_event(ENVIRONMENT, lambda event, body: uninstaller.consider(body, event))
