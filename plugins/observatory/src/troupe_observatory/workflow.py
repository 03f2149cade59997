"""A whole Observatory at one instant: its runs, the pods they need, and its status (pure).

:func:`plan` is the operator: ``troupe_build_resources`` returns ``plan(...).pods`` and
``troupe_aggregate_status`` returns ``plan(...).status``, both from the same context.

Pods are kept for their logs. A pod is deleted only when the status already on record says its attempt
is over, so a status write that failed never leads to an attempt being run twice; then it goes when:
its attempt timed out or its run was replaced (it may still be running), its run left the history, or
the podGC strategy says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from troupe import Condition, Cron, Manifest, StatusUpdate
from troupe_observatory.dag import topological
from troupe_observatory.models import ObservatorySpec, ObservatoryStatus, RunState, RunSummary, TaskStatus
from troupe_observatory.pods import labels_of
from troupe_observatory.scheduler import FINAL, RunResult, advance, read_time, stamp
from troupe_observatory.ticks import decide

#: A tick is acted on slightly after it, so the reconcile surely sees it as due.
TICK_SLACK = 0.2


@dataclass
class Plan:
    pods: list[Manifest]
    status: StatusUpdate
    created: list[Manifest] = field(default_factory=list)


#: The status each workflow's plan parsed last, and what it parsed to: the core shows a workflow's
#: reconciles the same status object until a reconcile decides another, and parsing a hundred task
#: records was a tenth of a plan. :func:`plan` writes into none of it (the tests check every scenario).
_PARSED: dict[tuple[str | None, str], tuple[Mapping[str, Any], ObservatoryStatus]] = {}
_PARSED_MAX = 256


def _old_status(status: Mapping[str, Any], key: tuple[str | None, str]) -> ObservatoryStatus:
    parsed = _PARSED.get(key)
    if parsed is not None and parsed[0] is status:
        return parsed[1]
    try:
        old = ObservatoryStatus.model_validate({k: v for k, v in status.items() if v is not None})
    except ValidationError:  # hand-edited nonsense: start over rather than crash
        old = ObservatoryStatus()
    _PARSED.pop(key, None)
    _PARSED[key] = (status, old)
    if len(_PARSED) > _PARSED_MAX:
        del _PARSED[next(iter(_PARSED))]
    return old


def _group(pods: Sequence[Manifest]) -> dict[int, dict[str, dict[int, Manifest]]]:
    grouped: dict[int, dict[str, dict[int, Manifest]]] = {}
    for pod in pods:
        ids = labels_of(pod)
        if ids is not None:
            run, task, attempt = ids
            grouped.setdefault(run, {}).setdefault(task, {})[attempt] = pod
    return grouped


def _summary(run: RunState, phase: str, completion: str | None, message: str | None = None) -> RunSummary:
    counts = {p: sum(1 for t in run.tasks if t.phase == p) for p in ("Succeeded", "Failed", "Skipped")}
    return RunSummary(
        run=run.run,
        phase=phase,  # type: ignore[arg-type]
        scheduled_time=run.scheduled_time,
        start_time=run.start_time,
        completion_time=completion,
        succeeded=counts["Succeeded"],
        failed=counts["Failed"],
        skipped=counts["Skipped"],
        message=message if message is not None else _failure(run.tasks),
    )


def _failure(tasks: Sequence[TaskStatus]) -> str | None:
    failed = [t for t in tasks if t.phase == "Failed"]
    if not failed:
        return None
    first = failed[0]
    text = f"task {first.name} failed: {first.message or 'failed'}"
    if len(failed) > 1:
        text += f" (and {len(failed) - 1} more: {', '.join(t.name for t in failed[1:6])})"
    skipped = [t.name for t in tasks if t.phase == "Skipped"]
    if skipped:
        text += f"; skipped: {', '.join(skipped[:6])}{', ...' if len(skipped) > 6 else ''}"
    return text


def _cancel(run: RunState, by: int) -> RunState:
    tasks = []
    for t in run.tasks:
        t = t.model_copy()
        if t.phase == "Running":
            t.phase, t.message = "Failed", f"cancelled: run {by} replaced this run"
        elif t.phase == "Pending":
            t.phase, t.message, t.retry_at = "Skipped", f"run {by} replaced this run", None
        tasks.append(t)
    return run.model_copy(update={"tasks": tasks})


def _records(old: ObservatoryStatus) -> dict[int, dict[str, TaskStatus]]:
    """The task records on record, by run then task: what :func:`_concluded` looks each pod up in."""
    runs = [RunState(run=old.run, tasks=old.tasks)] if old.run else []
    records: dict[int, dict[str, TaskStatus]] = {}
    for state in [*runs, *old.active_runs]:
        if state.run not in records:  # the first record of a run counts, as it always has
            records[state.run] = {t.name: t for t in reversed(state.tasks)}
    return records


def _concluded(
    history: set[int], records: dict[int, dict[str, TaskStatus]], run: int, task: str, attempt: int
) -> bool:
    """Does the status on record say this attempt is over? (``history``: the runs there.)"""
    if run in history:
        return True
    rec = records.get(run, {}).get(task)
    if rec is None:
        return False
    tried = rec.attempts or 0
    return tried > attempt or (tried == attempt and rec.phase != "Running")


def _keep_pod(
    pod: Manifest,
    spec: ObservatorySpec,
    recorded: tuple[set[int], dict[int, dict[str, TaskStatus]]],
    known: set[int],
    succeeded_runs: set[int],
) -> bool:
    """``recorded``: the runs in the history on record, and the task records (:func:`_records`)."""
    ids = labels_of(pod)
    if ids is None:
        return True
    run, task, attempt = ids
    if run not in known:
        return False
    history, records = recorded
    if not _concluded(history, records, run, task, attempt):
        return True
    phase = (pod.get("status") or {}).get("phase")  # as pods.outcome() reads it, without the rest
    if phase not in ("Succeeded", "Failed"):
        return False  # timed out, or its run was replaced: nothing more to log
    strategy = spec.pod_gc.strategy if spec.pod_gc else "Never"
    in_history = run in history
    if strategy == "OnPodCompletion" or (strategy == "OnPodSuccess" and phase == "Succeeded"):
        return False
    if strategy == "OnWorkflowCompletion" and in_history:
        return False
    return not (strategy == "OnWorkflowSuccess" and in_history and run in succeeded_runs)


def plan(
    spec: ObservatorySpec,
    *,
    name: str,
    namespace: str | None,
    created: datetime,
    status: Mapping[str, Any],
    pods: Sequence[Manifest],
    now: datetime,
    keep_pods: bool = True,
) -> Plan:
    """Everything one reconcile decides: the pods to have and the status to write.

    Pods to keep are returned as observed (the objects of ``pods`` themselves), which the core keeps as
    they are. ``keep_pods=False`` leaves them out of ``Plan.pods`` (only the new ones are there): the
    status pass does not need them, and deciding each pod of a large workflow is work.
    """
    old = _old_status(status, (namespace, name))
    order = spec.memo.get("order")
    if order is None:
        order = spec.memo["order"] = topological(spec.tasks)
    grouped = _group(pods)
    history = [h.model_copy() for h in old.history]
    finished_runs = {h.run for h in history}
    current = (
        RunState(run=old.run, scheduled_time=old.scheduled_time, start_time=old.start_time, tasks=old.tasks)
        if old.run
        else None
    )
    active = [r.model_copy() for r in old.active_runs]
    busy = bool(active) or (current is not None and current.run not in finished_runs)
    requeues: list[float] = []
    conditions: list[Condition] = []
    last_schedule = read_time(old.last_schedule_time)
    next_schedule: datetime | None = None
    start: tuple[str | None] | None = None  # (scheduled time,) when a run starts now

    if spec.schedule:
        cron = Cron.parse(spec.schedule, spec.time_zone)
        was_suspended = any(c.type == "Suspended" and c.status == "True" for c in old.conditions)
        decision = decide(
            spec, cron, last=last_schedule, created=created, now=now, busy=busy,
            resumed=was_suspended and not spec.suspend,
        )  # fmt: skip
        last_schedule = decision.last_schedule
        if decision.start is not None:
            start = (stamp(decision.start),)
        if decision.requeue_after is not None:
            requeues.append(decision.requeue_after)
        next_schedule = cron.next_after(max(now, last_schedule or now))
        if next_schedule is not None:
            requeues.append((next_schedule - now).total_seconds() + TICK_SLACK)
        previous = next((c for c in old.conditions if c.type == "Scheduled"), None)
        if decision.start is None and not decision.skipped and not decision.note and previous is not None:
            # no tick handled now: what the last one said (a skip, a catch-up) stands until the next
            conditions.append(previous)
        else:
            conditions.append(
                Condition(
                    type="Scheduled",
                    status="True",
                    reason="TicksSkipped" if decision.skipped else "OnSchedule",
                    message=decision.note or f"schedule {spec.schedule!r} ({spec.time_zone or 'UTC'})",
                )
            )
    elif current is None:
        start = (None,)

    cancelled: list[RunState] = []
    if start is not None:
        number = max([old.run or 0, *(r.run for r in active), *finished_runs]) + 1
        if current is not None and current.run not in finished_runs:
            if spec.concurrency_policy == "Replace":
                cancelled.append(current)
            else:
                active.append(current)
        if spec.concurrency_policy == "Replace":
            cancelled += active
            active = []
        current = RunState(run=number, scheduled_time=start[0], start_time=stamp(now), tasks=[])

    results: dict[int, RunResult] = {}
    runs = [r for r in [*active, current] if r is not None and r.run not in finished_runs]
    for state in runs:
        result = advance(
            spec, order, workflow=name, namespace=namespace, run=state.run, previous=state.tasks,
            pods=grouped.get(state.run, {}), now=now, may_start=not spec.suspend,
        )  # fmt: skip
        results[state.run] = result
        state.tasks = result.tasks
        if result.requeue_after is not None:
            requeues.append(result.requeue_after)

    completion = old.completion_time if current is not None and current.run == old.run else None
    for state in cancelled:
        state = _cancel(state, current.run if current else 0)
        history.append(
            _summary(state, "Failed", stamp(now), f"replaced by run {current.run if current else 0}")
        )
    still_active = []
    for state in active:
        phase = results[state.run].phase
        if phase in FINAL:
            history.append(_summary(state, phase, stamp(now)))
        else:
            still_active.append(state)
    phase = "Pending"
    if current is not None:
        if current.run in finished_runs:
            phase = next(h.phase for h in history if h.run == current.run)
        else:
            phase = results[current.run].phase
            if phase in FINAL:
                completion = completion or stamp(now)
                history.append(_summary(current, phase, completion))
    history.sort(key=lambda h: h.run, reverse=True)
    history = history[: spec.history_limit]

    known = {h.run for h in history} | {r.run for r in still_active} | ({current.run} if current else set())
    succeeded_runs = {h.run for h in history if h.phase == "Succeeded"}
    created_pods = [m for r in results.values() for m in r.create]
    kept = []
    if keep_pods:
        recorded = ({h.run for h in old.history}, _records(old))
        # the observed pods themselves: the core keeps a child returned as observed as it is
        kept = [p for p in pods if _keep_pod(p, spec, recorded, known, succeeded_runs)]

    tasks = current.tasks if current else []
    done = sum(1 for t in tasks if t.phase == "Succeeded")
    fields: dict[str, Any] = {
        "run": current.run if current else None,
        "scheduledTime": current.scheduled_time if current else None,
        "startTime": current.start_time if current else None,
        "completionTime": completion if phase in FINAL else None,
        "progress": f"{done}/{len(spec.tasks) if current is None else len(tasks)}",
        "tasks": [t.dump() for t in tasks],
        "activeRuns": [r.dump() for r in still_active] or None,
        "history": [h.dump() for h in history] or None,
        "lastScheduleTime": stamp(last_schedule) if last_schedule else None,
        "nextScheduleTime": stamp(next_schedule) if next_schedule else None,
    }
    conditions = [*_conditions(spec, phase, current, tasks), *conditions]
    update = StatusUpdate(
        phase=phase,
        conditions=conditions,
        fields=fields,
        requeue_after=max(min(requeues), 0.0) if requeues else None,
    )
    return Plan(pods=[*kept, *created_pods], status=update, created=created_pods)


def _conditions(
    spec: ObservatorySpec, phase: str, current: RunState | None, tasks: Sequence[TaskStatus]
) -> list[Condition]:
    run = f"run {current.run}" if current else "no run"
    state = f"{run} is {phase}" if current else "no run has started yet"
    failure = _failure(tasks) if phase == "Failed" else None
    ready = (
        Condition(type="Ready", status="False", reason="TasksFailed", message=f"{run}: {failure}")
        if failure
        else Condition(type="Ready", status="True", reason=phase, message=state)
    )
    completed = Condition(
        type="Completed", status="True" if phase in FINAL else "False", reason=phase, message=state
    )
    failed = (
        Condition(type="Failed", status="True", reason="TasksFailed", message=f"{run}: {failure}")
        if failure
        else Condition(type="Failed", status="False", reason="NoFailure", message="")
    )
    suspended = (
        Condition(
            type="Suspended",
            status="True",
            reason="Suspended",
            message="spec.suspend is true: no new task or run starts; running tasks finish",
        )
        if spec.suspend
        else Condition(type="Suspended", status="False", reason="NotSuspended", message="")
    )
    return [ready, completed, failed, suspended]
