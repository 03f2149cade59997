"""``Greeting``: the smallest complete Troupe operator, implementing every hook.

A Greeting renders its message into a ConfigMap, is Ready once the ConfigMap exists, and refuses to greet
names on a deny list (a rule beyond the schema, so it lives in ``troupe_validate``).
"""

from __future__ import annotations

from typing import Any, Literal

import kopf
from pydantic import ConfigDict, Field

from troupe import (
    ChildKind,
    Condition,
    KindSpec,
    Manifest,
    OperatorHandle,
    PrinterColumn,
    ReconcileContext,
    SpecModel,
    StatusModel,
    StatusUpdate,
    hookimpl,
)

DENIED = {"nobody"}


class Delivery(SpecModel):
    """How the greeting is delivered."""

    channel: Literal["configmap", "log"] = "configmap"
    """Where the greeting goes."""
    repeat: int = Field(default=1, ge=1, le=10)
    """How many times the message is repeated."""


class GreetingSpec(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self.name != self.message", "message": "name and message must differ"}
            ]
        }
    )

    name: str = Field(min_length=1, max_length=63)
    """Who is greeted."""
    message: str = "Hello"
    """What they are told."""
    delivery: Delivery = Delivery()
    """Delivery options."""
    tags: list[str] = Field(default_factory=list, max_length=8)
    """Free labels for the greeting."""
    extra: dict[str, str] = Field(default_factory=dict)
    """Extra keys copied into the ConfigMap."""


class GreetingStatus(StatusModel):
    config_map: str | None = None
    """The ConfigMap holding the greeting."""


GREETING = KindSpec(
    operator="example",
    group="example.troupe.dev",
    version="v1alpha1",
    kind="Greeting",
    plural="greetings",
    spec_model=GreetingSpec,
    status_model=GreetingStatus,
    short_names=("greet",),
    categories=("troupe",),
    printer_columns=(
        PrinterColumn("Name", ".spec.name"),
        PrinterColumn("Phase", ".status.phase"),
    ),
    children=(ChildKind("v1", "ConfigMap", "configmaps"),),
    description="A greeting rendered into a ConfigMap.",
    finalize=True,
)

#: What this process saw, for the tests: finalized names and phase transitions.
FINALIZED: list[str] = []
TRANSITIONS: list[tuple[str, str | None, str | None]] = []


def config_map_name(ctx: ReconcileContext[GreetingSpec]) -> str:
    return f"{ctx.name}-greeting"


@hookimpl
def troupe_kinds() -> list[KindSpec]:
    return [GREETING]


@hookimpl
def troupe_validate(ctx: ReconcileContext[GreetingSpec]) -> list[str] | None:
    if ctx.spec.name in DENIED:
        return [f"spec.name: {ctx.spec.name!r} is on the deny list; greet someone else"]
    return None


@hookimpl
def troupe_build_resources(ctx: ReconcileContext[GreetingSpec]) -> list[Manifest] | None:
    if ctx.deleting or ctx.spec.delivery.channel != "configmap":
        return None  # on delete the ConfigMap goes first, before the finalizer is released
    spec: GreetingSpec = ctx.spec
    text = " ".join([f"{spec.message}, {spec.name}!"] * spec.delivery.repeat)
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": config_map_name(ctx), "namespace": ctx.namespace},
            "data": {"greeting": text, **spec.extra},
        }
    ]


@hookimpl
def troupe_mutate_resource(ctx: ReconcileContext[GreetingSpec], resource: Manifest) -> None:
    resource["metadata"].setdefault("annotations", {})["example.troupe.dev/generation"] = str(ctx.generation)


@hookimpl
def troupe_aggregate_status(ctx: ReconcileContext[GreetingSpec]) -> StatusUpdate | None:
    if ctx.spec.delivery.channel == "log":
        return StatusUpdate(
            phase="Ready",
            conditions=[Condition(type="Ready", status="True", reason="Logged", message="greeting logged")],
            fields={"configMap": None},
        )
    name = config_map_name(ctx)
    if ctx.children.named("ConfigMap", name):
        return StatusUpdate(
            phase="Ready",
            conditions=[Condition(type="Ready", status="True", reason="Delivered", message=f"in {name}")],
            fields={"configMap": name},
        )
    return StatusUpdate(
        phase="Pending",
        conditions=[Condition(type="Ready", status="False", reason="Delivering", message="writing")],
        requeue_after=5,
    )


@hookimpl
def troupe_status_changed(
    ctx: ReconcileContext[GreetingSpec], old: dict[str, Any], new: dict[str, Any]
) -> None:
    if new.get("phase") != old.get("phase"):
        TRANSITIONS.append((ctx.name, old.get("phase"), new.get("phase")))


@hookimpl
def troupe_finalize(ctx: ReconcileContext[GreetingSpec]) -> None:
    FINALIZED.append(ctx.name)


@hookimpl
def troupe_register_handlers(handle: OperatorHandle) -> None:
    if "example" not in handle.operators:
        return

    @kopf.on.startup(registry=handle.kopf)
    async def announce(logger: kopf.Logger, **_: Any) -> None:
        logger.info("example operator ready for %s", ", ".join(k.kind for k in handle.kinds))
