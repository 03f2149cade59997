"""Hook implementations of the observatory operator: DAG workflows of pods."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
    # A function of the spec and the name only: checked once per parsed spec (once per generation).
    checked = spec.memo.get(("problems", ctx.name))
    if checked is None:
        checked = spec.memo["problems", ctx.name] = _problems(spec, ctx.name)
    return list(checked)


def _problems(spec: ObservatorySpec, name: str) -> list[str]:
    messages = dag.validate(spec.tasks)
    for first, second in shared_pod_names(name, (t.name for t in spec.tasks)):
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


@dataclass(frozen=True)
class _Built:
    """The build pass of one reconcile: what it was shown (the body, ``now``, the children) and its plan."""

    body: Manifest
    now: datetime
    children: Mapping[Any, Manifest]
    plan: Plan

    def again(self, ctx: ReconcileContext[ObservatorySpec]) -> bool:
        """Is ``ctx`` the core's second look after applying: the same body and ``now``, the very children
        this pass was shown, and the pods it created (nothing pruned, nothing else changed)?"""
        if ctx.body is not self.body or ctx.now != self.now or not self.plan.created:
            return False
        created = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in self.plan.created}
        if len(ctx.children) != len(self.children) + len(created):
            return False
        return all(
            self.children.get(key) is child or (key.namespace, key.name) in created
            for key, child in ctx.children.items()
        )


#: The build pass's plan of each object's reconcile under way, by uid, for its status pass and for the
#: core's second look at the builders once it created pods (do they build more with those there?).
#: Neither needs a second plan of the same reconcile (same body, same ``now``): shown the pods the build
#: pass created, the plan starts nothing more (only the tasks it started differ, and they are Running
#: either way) and decides the same status (those pods started at ``now``, as the build pass recorded)
#: (tests/test_runs.py checks both). Bounded: an entry whose status pass never comes (a refused child,
#: a teardown) is dropped in time.
_BUILT: dict[str, _Built] = {}
_BUILT_MAX = 256


@hookimpl
def troupe_build_resources(ctx: ReconcileContext[ObservatorySpec]) -> list[Manifest] | None:
    before = _BUILT.get(ctx.uid)
    if before is not None and before.again(ctx):
        return list(before.plan.pods)  # the core looking again after creating the pods
    built = _plan(ctx)
    _BUILT.pop(ctx.uid, None)
    _BUILT[ctx.uid] = _Built(ctx.body, ctx.now, ctx.children, built)
    if len(_BUILT) > _BUILT_MAX:
        del _BUILT[next(iter(_BUILT))]
    return built.pods


@hookimpl
def troupe_aggregate_status(ctx: ReconcileContext[ObservatorySpec]) -> StatusUpdate | None:
    built = _BUILT.pop(ctx.uid, None)
    if built is not None and built.body is ctx.body and built.now == ctx.now:
        return built.plan.status
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
