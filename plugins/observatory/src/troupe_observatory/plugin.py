"""Hook implementations of the observatory operator: DAG workflows of pods."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from troupe import (
    Cron,
    CronError,
    KindSpec,
    Manifest,
    OperatorHandle,
    ReconcileContext,
    StatusUpdate,
    hookimpl,
    parse_time,
)
from troupe_observatory import dag
from troupe_observatory.metrics import TaskMetrics, observe
from troupe_observatory.models import OBSERVATORY, ObservatorySpec
from troupe_observatory.pods import shared_pod_names
from troupe_observatory.workflow import Plan, plan

#: Set when the operator runs (``troupe_register_handlers``); unit tests leave it unset.
METRICS: list[TaskMetrics] = []


@hookimpl
def troupe_kinds() -> list[KindSpec]:
    return [OBSERVATORY]


@hookimpl
def troupe_validate(ctx: ReconcileContext[ObservatorySpec]) -> list[str] | None:
    spec: ObservatorySpec = ctx.spec
    messages = dag.validate(spec.tasks)
    for first, second in shared_pod_names(ctx.name, (t.name for t in spec.tasks)):
        messages.append(
            f"spec.tasks: tasks {first} and {second} would share pod names (their names hash alike "
            "in this workflow); rename one of them"
        )
    if spec.schedule:
        try:
            Cron.parse(spec.schedule, spec.time_zone)
        except CronError as exc:
            messages.append(f"spec.schedule: {exc}")
    return messages


def _plan(ctx: ReconcileContext[ObservatorySpec], *, keep_pods: bool = True) -> Plan:
    meta = ctx.body["metadata"]
    return plan(
        ctx.spec,
        name=ctx.name,
        namespace=ctx.namespace,
        created=parse_time(meta.get("creationTimestamp")) or ctx.now,
        status=ctx.status,
        pods=ctx.children.of_kind("Pod"),
        now=ctx.now,
        keep_pods=keep_pods,
    )


#: The build pass's plan of each object's reconcile under way, by uid, for its status pass. The status
#: pass of the same reconcile (same body, same ``now``) would decide the same status: it sees the pods
#: the build pass created as started at ``now``, which is what the build pass recorded. Bounded: an
#: entry whose status pass never comes (a refused child, a teardown) is dropped in time.
_BUILT: dict[str, tuple[Manifest, datetime, Plan]] = {}
_BUILT_MAX = 256


@hookimpl
def troupe_build_resources(ctx: ReconcileContext[ObservatorySpec]) -> list[Manifest] | None:
    built = _plan(ctx)
    _BUILT.pop(ctx.uid, None)
    _BUILT[ctx.uid] = (ctx.body, ctx.now, built)
    if len(_BUILT) > _BUILT_MAX:
        del _BUILT[next(iter(_BUILT))]
    return built.pods


@hookimpl
def troupe_aggregate_status(ctx: ReconcileContext[ObservatorySpec]) -> StatusUpdate | None:
    body, now, built = _BUILT.pop(ctx.uid, (None, None, None))
    if built is not None and body is ctx.body and now == ctx.now:
        return built.status
    return _plan(ctx, keep_pods=False).status


@hookimpl
def troupe_status_changed(
    ctx: ReconcileContext[ObservatorySpec], old: dict[str, Any], new: dict[str, Any]
) -> None:
    if not METRICS:
        return
    dependencies = {t.name: list(t.dependencies or ()) for t in ctx.spec.tasks}
    observe(METRICS[0], old, new, dependencies)


@hookimpl
def troupe_register_handlers(handle: OperatorHandle) -> None:
    if "observatory" in handle.operators and not METRICS:
        METRICS.append(TaskMetrics.create(handle.metrics("observatory")))
