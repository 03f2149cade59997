"""The catalyst operator's Project kind: an application's repository, how it deploys, its limits.

A plugin of its own (entry point ``catalyst-project``): a Project has no children, so the core's default
status (Ready once the spec is valid) is all its hooks would say. What it adds is ``status.environments``,
how many Environments name it, written by event handlers of the two kinds.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from troupe import KindSpec, Manifest, OperatorHandle, PrinterColumn, hookimpl
from troupe_catalyst.environment import ENVIRONMENT
from troupe_catalyst.models import ProjectSpec, ProjectStatus
from troupe_catalyst.references import API_VERSION, GROUP, VERSION, catalyst_kind, project_counts, project_of

logger = logging.getLogger(__name__)

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


@hookimpl
def troupe_kinds() -> list[KindSpec]:
    return [PROJECT]


@hookimpl
def troupe_register_handlers(handle: OperatorHandle) -> None:
    # the count reads both kinds' watch caches: without Environments run here it would write 0 everywhere
    if PROJECT not in handle.kinds or ENVIRONMENT not in handle.kinds:
        return

    @kopf.on.event(GROUP, VERSION, "environments", registry=handle.kopf, id="catalyst-project-counts")
    async def environment_event(event: kopf.RawEvent, **_: Any) -> None:
        await count_environments(handle, dict(event["object"]), event["type"])

    @kopf.on.event(GROUP, VERSION, "projects", registry=handle.kopf, id="catalyst-projects")
    async def project_event(event: kopf.RawEvent, **_: Any) -> None:
        if event["type"] != "DELETED":
            await count_environments(handle, None, None)


async def count_environments(
    handle: OperatorHandle, event_body: Manifest | None, event_type: str | None
) -> None:
    """Write each Project's ``status.environments`` when it differs (the count of Environments naming it)."""
    envs = {(b["metadata"].get("namespace"), b["metadata"]["name"]): b for b in handle.objects(ENVIRONMENT)}
    if event_body is not None:
        key = (event_body["metadata"].get("namespace"), event_body["metadata"]["name"])
        if event_type == "DELETED":
            envs.pop(key, None)
        else:
            envs[key] = event_body
    counts = project_counts(r for b in envs.values() for r in project_of(b))
    for project in handle.objects(PROJECT):
        meta = project["metadata"]
        wanted = counts.get((meta.get("namespace"), meta["name"]), 0)
        if (project.get("status") or {}).get("environments") == wanted:
            continue
        try:
            await handle.kube.patch_status(
                API_VERSION, "projects", meta.get("namespace"), meta["name"], {"environments": wanted}
            )
        except Exception as exc:  # a count is a courtesy: the next event writes it
            logger.warning(
                "Project %s/%s: could not write its environment count: %s",
                meta.get("namespace"),
                meta["name"],
                exc,
            )
        await asyncio.sleep(0)
