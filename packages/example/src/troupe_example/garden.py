"""A cluster-scoped test operator for the core's mechanisms a plain namespaced kind does not need.

A Garden gets a Namespace of its own and a ConfigMap in it (ordered apply, cluster-scoped owner), takes
its colours from a palette ConfigMap it names (a related kind), provisions only when the policy
ConfigMap's ``concurrency`` allows (admission), runs a slow survey outside the reconcile (a long-running
action that counts its runs in a ConfigMap), and may ask for a Statue, whose CRD a cluster may lack (an
optional child kind). The e2e tests drive each mechanism through it.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from pydantic import Field

from troupe import (
    Action,
    Admission,
    ChildKind,
    Children,
    Condition,
    KindSpec,
    Manifest,
    OperatorHandle,
    PrinterColumn,
    ReconcileContext,
    RelatedKind,
    SpecModel,
    StatusModel,
    StatusUpdate,
    hookimpl,
    isoformat,
)

#: ``namespace/name`` of the ConfigMap whose ``concurrency`` key limits Gardens provisioning at once.
POLICY_ENV = "TROUPE_GARDEN_POLICY"
SURVEYS = "surveys"


class PaletteRef(SpecModel):
    namespace: str = Field(min_length=1, max_length=63)
    name: str = Field(min_length=1, max_length=253)


class GardenSpec(SpecModel):
    palette: PaletteRef
    """The ConfigMap whose ``colour`` key the garden takes (read, never written)."""
    survey: str = Field(default="", max_length=63)
    """Something to survey: a slow step run outside the reconcile, once per value."""
    survey_seconds: int = Field(default=5, ge=0, le=600)
    statue: bool = False
    """Ask for a Statue (art.example.troupe.dev), whose CRD may be missing."""


class GardenStatus(StatusModel):
    phase: str | None = None
    namespace: str | None = None
    provisioning_since: str | None = None
    ready_at: str | None = None
    conditions: list[Condition] = Field(default_factory=list)


def policy() -> tuple[str, str]:
    namespace, _, name = os.environ.get(POLICY_ENV, "default/garden-policy").partition("/")
    return namespace, name


def references(body: Manifest) -> list[tuple[str | None, str]]:
    palette = (body.get("spec") or {}).get("palette") or {}
    refs: list[tuple[str | None, str]] = [policy()]
    if palette.get("namespace") and palette.get("name"):
        refs.append((palette["namespace"], palette["name"]))
    return refs


def concurrency(related: Children) -> int | None:
    config = related.named("ConfigMap", policy()[1], namespace=policy()[0])
    value = ((config or {}).get("data") or {}).get("concurrency", "")
    return int(value) if value.isdigit() else None


def phase_of(body: Manifest) -> str | None:
    return (body.get("status") or {}).get("phase")


async def survey(inputs: dict[str, Any], handle: OperatorHandle) -> dict[str, Any]:
    """Sleep, then count the run in the garden's ``surveys`` ConfigMap (so a test sees every run)."""
    await asyncio.sleep(inputs["seconds"])
    path = f"/api/v1/namespaces/{inputs['namespace']}/configmaps/{SURVEYS}"
    current = await handle.kube.get("v1", "configmaps", inputs["namespace"], SURVEYS)
    runs = int(((current or {}).get("data") or {}).get("runs", "0")) + 1
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": SURVEYS},
        "data": {"runs": str(runs)},
    }
    await handle.kube.request(
        "PATCH",
        path,
        body=body,
        query={"fieldManager": "garden-survey"},
        content_type="application/apply-patch+yaml",
    )
    return {"surveyed": inputs["what"], "run": runs}


GARDEN = KindSpec(
    operator="garden",
    group="example.troupe.dev",
    version="v1alpha1",
    kind="Garden",
    plural="gardens",
    scope="Cluster",
    spec_model=GardenSpec,
    status_model=GardenStatus,
    printer_columns=(
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Namespace", ".status.namespace"),
    ),
    children=(
        ChildKind("v1", "Namespace", "namespaces", namespaced=False),
        ChildKind("v1", "ConfigMap", "configmaps"),
        ChildKind(
            "art.example.troupe.dev/v1",
            "Statue",
            "statues",
            optional=True,
            missing_hint="install the art.example.troupe.dev CRDs",
        ),
    ),
    related=(RelatedKind("v1", "ConfigMap", "configmaps", references=references),),
    admission=Admission(
        limit=concurrency,
        holding=lambda body: phase_of(body) == "Provisioning",
        waiting=lambda body: phase_of(body) in (None, "", "Queued"),
    ),
    actions=(Action("survey", survey, timeout=120),),
    description="A test operator's garden: a namespace of its own, a palette, a slow survey, maybe a statue.",
)


def garden_namespace(name: str) -> str:
    return f"garden-{name}"


@hookimpl
def troupe_kinds() -> list[KindSpec]:
    return [GARDEN]


@hookimpl
def troupe_build_resources(ctx: ReconcileContext[GardenSpec]) -> list[Manifest]:
    if not ctx.admission.admitted:
        return []
    namespace = garden_namespace(ctx.name)
    palette = ctx.related.named("ConfigMap", ctx.spec.palette.name, namespace=ctx.spec.palette.namespace)
    built: list[Manifest] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}]
    if palette is not None:
        colour = (palette.get("data") or {}).get("colour", "")
        built.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "palette", "namespace": namespace},
                "data": {"colour": colour},
            }
        )
    if ctx.spec.statue:
        statue = {"apiVersion": "art.example.troupe.dev/v1", "kind": "Statue"}
        built.append(
            {**statue, "metadata": {"name": ctx.name, "namespace": namespace}, "spec": {"stone": "granite"}}
        )
    return built


@hookimpl
def troupe_aggregate_status(ctx: ReconcileContext[GardenSpec]) -> StatusUpdate:
    status = ctx.status
    if not ctx.admission.admitted:
        message = f"waiting for a slot: number {ctx.admission.position} in line (limit {ctx.admission.limit})"
        return StatusUpdate(
            phase="Queued",
            conditions=[Condition(type="Ready", status="False", reason="Queued", message=message)],
        )
    namespace = garden_namespace(ctx.name)
    since = status.get("provisioningSince") or isoformat(ctx.now)
    actions: dict[str, dict[str, Any]] = {}
    waiting_for = []
    if ctx.children.named("ConfigMap", "palette") is None:
        waiting_for.append("the palette")
    if ctx.spec.survey:
        actions["survey"] = {
            "what": ctx.spec.survey,
            "seconds": ctx.spec.survey_seconds,
            "namespace": namespace,
        }
        record = ctx.actions.get("survey")
        if record is None or record.phase != "Succeeded" or record.result.get("surveyed") != ctx.spec.survey:
            waiting_for.append("the survey")
    fields = {"namespace": namespace, "provisioningSince": since}
    if waiting_for:
        return StatusUpdate(
            phase="Provisioning",
            conditions=[
                Condition(type="Ready", status="False", reason="Provisioning", message=", ".join(waiting_for))
            ],
            fields={**fields, "readyAt": None},
            actions=actions,
        )
    return StatusUpdate(
        phase="Ready",
        conditions=[Condition(type="Ready", status="True", reason="Ready", message="")],
        fields={**fields, "readyAt": status.get("readyAt") or isoformat(ctx.now)},
        actions=actions,
    )
