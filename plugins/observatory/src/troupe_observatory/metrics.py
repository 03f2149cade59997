"""Observatory metrics, observed from status transitions (what the operator wrote, not what it guessed).

``troupe_observatory_objects{kind,phase}`` (workflows by phase) comes from the core. Here:
task durations, failed attempts, and scheduling latency: from the moment a task became eligible (its
last dependency finished, its run started, or its retry backoff ended) to the creation of its pod.
Dependency finish times come from the kubelet (pod containerStatuses), to the second.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Histogram

from troupe import OperatorMetrics
from troupe_observatory.scheduler import read_time

_NEVER = datetime.min.replace(tzinfo=UTC)
_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600)


@dataclass
class TaskMetrics:
    duration: Histogram
    failures: Counter
    latency: Histogram

    @classmethod
    def create(cls, metrics: OperatorMetrics) -> TaskMetrics:
        return cls(
            duration=metrics.histogram(
                "task_duration_seconds",
                "Time from a task's pod creation to its end, by result (Succeeded, Failed).",
                ("result",),
                buckets=_BUCKETS,
            ),
            failures=metrics.counter(
                "task_failures_total",
                "Failed task attempts (retried or not), by reason (Error, DeadlineExceeded).",
                ("reason",),
            ),
            latency=metrics.histogram(
                "scheduling_latency_seconds",
                "Time from a task becoming eligible to the creation of its pod.",
                buckets=_BUCKETS,
            ),
        )


def _runs(status: Mapping[str, Any]) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    if status.get("run"):
        yield int(status["run"]), list(status.get("tasks") or [])
    for run in status.get("activeRuns") or []:
        yield int(run["run"]), list(run.get("tasks") or [])


def _seconds(later: str | None, earlier: str | None) -> float | None:
    """Seconds from ``earlier`` to ``later``; never negative (a histogram has no place for it)."""
    a, b = read_time(later), read_time(earlier)
    if a is None or b is None:
        return None
    return max((a - b).total_seconds(), 0.0)


def _eligible_at(
    task: dict[str, Any], tasks: Mapping[str, dict[str, Any]], run_start: str | None
) -> str | None:
    """When a task that just started could first have started (None when unknown)."""
    if task.get("attempts", 1) > 1:
        return None  # a retry: its wait is the backoff, not scheduling
    deps = [tasks[d] for d in task.get("dependencies", ()) if d in tasks]
    times = [d.get("finishedAt") for d in deps]
    if any(t is None for t in times):
        return None
    candidates = [t for t in (*times, run_start) if t]
    return max(candidates, key=lambda t: read_time(t) or _NEVER) if candidates else None


def observe(
    metrics: TaskMetrics,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    dependencies: Mapping[str, list[str]],
) -> None:
    """Record what changed between two statuses: new attempts, ended tasks, failed attempts."""
    before = {(run, t["name"]): t for run, tasks in _runs(old) for t in tasks}
    starts = {int(new["run"]): new.get("startTime")} if new.get("run") else {}
    starts.update({int(r["run"]): r.get("startTime") for r in new.get("activeRuns") or []})
    for run, tasks in _runs(new):
        by_name = {t["name"]: {**t, "dependencies": dependencies.get(t["name"], [])} for t in tasks}
        for task in by_name.values():
            prior = before.get((run, task["name"]), {})
            attempts, prior_attempts = task.get("attempts", 0), prior.get("attempts", 0)
            # a new attempt, though it may have ended already: statuses are written about once a second,
            # so a short task can go from Pending to Succeeded between two of them
            if attempts > prior_attempts and task.get("startedAt"):
                eligible = _eligible_at(task, by_name, starts.get(run))
                waited = _seconds(task.get("startedAt"), eligible)
                if waited is not None:
                    metrics.latency.observe(waited)
            failed_attempt = (task.get("phase") == "Failed" and prior.get("phase") != "Failed") or (
                task.get("retryAt") and task.get("retryAt") != prior.get("retryAt")
            )
            if failed_attempt:
                message = task.get("message") or ""
                metrics.failures.labels(
                    reason="DeadlineExceeded" if "DeadlineExceeded" in message else "Error"
                ).inc()
            if task.get("phase") in ("Succeeded", "Failed") and prior.get("phase") != task.get("phase"):
                took = _seconds(task.get("finishedAt"), task.get("startedAt"))
                if took is not None:
                    metrics.duration.labels(result=task["phase"]).observe(took)
