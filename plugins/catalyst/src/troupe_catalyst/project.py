"""The catalyst operator's Project kind: an application's repository, how it deploys, its limits.

A plugin of its own (entry point ``catalyst-project``): a Project has no children, so the core's default
status (Ready once the spec is valid) is what its hooks say, with ``status.environments``: how many
Environments name it, the Project's referrers as the core knows them (``ctx.referrers``; the core
reconciles a Project again whenever an Environment naming it comes, goes or names another).
"""

from __future__ import annotations

from troupe import KindSpec, OperatorHandle, PrinterColumn, ReconcileContext, StatusUpdate, hookimpl
from troupe_catalyst.environment import ENVIRONMENT
from troupe_catalyst.models import ProjectSpec, ProjectStatus
from troupe_catalyst.references import catalyst_kind

PROJECT = catalyst_kind(
    kind="Project",
    plural="projects",
    singular="project",
    spec_model=ProjectSpec,
    status_model=ProjectStatus,
    short_names=("cproj",),
    printer_columns=(
        PrinterColumn("Repository", ".spec.source.repositoryUrl"),
        PrinterColumn("Type", ".spec.deployment.type"),
        PrinterColumn("Environments", ".status.environments", type="integer"),
        PrinterColumn("Phase", ".status.phase"),
    ),
    description="A deployable application: its repository, how it deploys, each environment's limits.",
)

#: Whether this process reconciles Environments (the plugin catalyst-environment may be disabled): only
#: then are its referrers the Environments naming a Project, and the count is written.
_counting = False


@hookimpl
def troupe_kinds() -> list[KindSpec]:
    return [PROJECT]


@hookimpl
def troupe_register_handlers(handle: OperatorHandle) -> None:
    global _counting
    _counting = PROJECT in handle.kinds and ENVIRONMENT in handle.kinds


@hookimpl
def troupe_aggregate_status(ctx: ReconcileContext[ProjectSpec]) -> StatusUpdate:
    if not _counting:
        return StatusUpdate(phase="Ready")
    return StatusUpdate(phase="Ready", fields={"environments": len(ctx.referrers.of_kind(ENVIRONMENT.kind))})
