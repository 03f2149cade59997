"""The DAG scheduler of one run: a pure function of the spec, the run's pods, its last status and now.

:func:`advance` is called twice per reconcile with the same ``now``: once to build pods (the pods it
decides to start), once for status, when the pods it created are observed. A task whose pod exists but
whose record does not know it yet is adopted as Running with the pod's own times (see
:func:`adopted_start`), so a status write that was lost (an operator killed between creating a pod and
recording it) is rebuilt from the pods, and no record contradicts its pod: ``startedAt <= finishedAt``.

Rules, per task, in dependency order:
  - A Running task follows its current attempt's pod: Succeeded, or a failed attempt (non-zero exit, pod
    failure, or ``timeout`` passed, which the operator enforces since not every node does). A failed
    attempt with retries left makes the task Pending again until ``retryAt`` (exponential backoff);
    otherwise the task Failed. A pod that vanished before its result was seen is created again.
  - A Pending task waits until every dependency has ended. Each dependency must have Succeeded, or ended
    in the phase its ``when`` condition names; otherwise the task is Skipped (so the descendants of a
    failed task are Skipped, transitively). With ``failFast`` a failed task skips every task not started.
  - Eligible tasks start in dependency order (spec order among equals) while fewer than ``maxConcurrent``
    pods run, unless the run may not start tasks (suspended, or being replaced).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from troupe import Manifest, parse_duration, parse_time
from troupe_observatory.models import ObservatorySpec, Task, TaskStatus
from troupe_observatory.pods import Outcome, build_pod, container_ended, outcome, pod_name

FINAL = frozenset({"Succeeded", "Failed", "Skipped"})
#: A pod whose container ended but whose phase does not say so yet is looked at again this soon.
ENDED_RECHECK = timedelta(seconds=1)
DEFAULT_BACKOFF = ("10s", 2, "10m")
#: Where computed times stop instead of overflowing past year 9999.
END_OF_TIME = datetime.max.replace(tzinfo=UTC)

#: pods of one run by task name, then attempt number
RunPods = Mapping[str, Mapping[int, Manifest]]


def stamp(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds: task timings are finer than metav1.Time's seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def later(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta``, held at :data:`END_OF_TIME` instead of overflowing: durations are bounded,
    but a time read back from a pod or a hand-edited status may be any time at all."""
    return moment + delta if END_OF_TIME - moment > delta else END_OF_TIME


def read_time(value: str | None) -> datetime | None:
    """A metav1.Time from a pod or the status; None when missing or unreadable (never an exception)."""
    try:
        return parse_time(value)
    except ValueError:
        return None


def backoff_delay(task: Task, failed_attempt: int) -> timedelta:
    """The wait after attempt ``failed_attempt`` (1-based) failed: ``duration * factor^(n-1)``, at most
    ``maxDuration``. Multiplied step by step in float seconds and stopped at the cap, so it cannot
    overflow whatever the numbers (a float grows to inf at worst, never raises)."""
    duration, factor, maximum = (
        (task.backoff.duration, task.backoff.factor, task.backoff.max_duration)
        if task.backoff
        else DEFAULT_BACKOFF
    )
    wait = parse_duration(duration).total_seconds()
    cap = parse_duration(maximum).total_seconds()
    for _ in range(failed_attempt - 1):
        if wait >= cap:
            break
        wait *= factor
    return timedelta(seconds=min(wait, cap))


def adopted_start(seen: Outcome, now: datetime) -> str:
    """When a pod the record does not know yet was created, for ``startedAt``.

    The pod's creationTimestamp, to the second. A pod created within the last second (which includes
    the pods this very reconcile created) is stamped with the reconcile's own ``now`` instead: the same
    instant to within that second, with the milliseconds that scheduling latency is measured in.
    """
    created = read_time(seen.created_at) or read_time(seen.started_at)
    if created is None or created > now - timedelta(seconds=1):
        return stamp(now)
    return stamp(created)


@dataclass
class RunResult:
    """What :func:`advance` decided for one run."""

    tasks: list[TaskStatus]
    create: list[Manifest] = field(default_factory=list)
    requeue_after: float | None = None

    @property
    def phase(self) -> str:
        if all(t.phase in FINAL for t in self.tasks):
            return "Failed" if any(t.phase == "Failed" for t in self.tasks) else "Succeeded"
        started = any(t.attempts or t.phase in FINAL for t in self.tasks)
        return "Running" if started else "Pending"

    def count(self, phase: str) -> int:
        return sum(1 for t in self.tasks if t.phase == phase)


def _requeue(result: RunResult, at: datetime, now: datetime) -> None:
    delay = max((at - now).total_seconds(), 0.0)
    result.requeue_after = delay if result.requeue_after is None else min(result.requeue_after, delay)


def _fail_attempt(
    task: Task, rec: TaskStatus, *, exit_code: int | None, message: str, at: str, now: datetime
) -> None:
    attempt = rec.attempts or 1
    rec.exit_code = exit_code
    if attempt <= task.retries:
        retry_at = later(read_time(at) or now, backoff_delay(task, attempt))
        rec.phase = "Pending"
        rec.retry_at = stamp(retry_at)
        rec.finished_at = None
        rec.message = f"attempt {attempt} of {task.retries + 1} failed: {message}"
    else:
        rec.phase = "Failed"
        rec.finished_at = at
        rec.retry_at = None
        rec.message = message if task.retries == 0 else f"attempt {attempt} of {task.retries + 1}: {message}"


def _follow(
    task: Task, rec: TaskStatus, pods: Mapping[int, Manifest], now: datetime, result: RunResult
) -> bool:
    """Update a Running task from its pod; True when its pod must be created (again)."""
    attempt = rec.attempts or 1
    pod = pods.get(attempt)
    seen = outcome(pod) if pod is not None else None
    if seen is not None and seen.finished:
        # the container's end (or now, when the pod does not say), never before the record's start:
        # kubelets write whole seconds, so a pod that ran for 0.3 s may "finish" before it started
        finished = read_time(seen.finished_at) or now
        began = read_time(rec.started_at)
        finished_at = stamp(max(finished, began) if began else finished)
        if seen.succeeded:
            rec.phase, rec.exit_code, rec.finished_at, rec.message = "Succeeded", 0, finished_at, None
        else:
            _fail_attempt(
                task, rec, exit_code=seen.exit_code, message=seen.message or "failed", at=finished_at, now=now
            )
        return False
    if pod is not None and container_ended(pod):
        # its phase says so in the same write, as kubelets write it; should it come apart, a change of
        # phase alone is not among what reconciles the workflow (ChildKind.reads): look again soon
        _requeue(result, later(now, ENDED_RECHECK), now)
    if task.timeout:
        # A pod that vanished is created again only within the attempt's deadline, counted from the
        # record's start (a new pod has not started yet): the same deadline once it is there.
        began = (read_time(seen.started_at) if seen else None) or read_time(rec.started_at) or now
        deadline = later(began, parse_duration(task.timeout))
        if now >= deadline:
            _fail_attempt(
                task, rec, exit_code=None, message=f"timed out after {task.timeout} (DeadlineExceeded)",
                at=stamp(now), now=now,
            )  # fmt: skip
            return False
        _requeue(result, deadline, now)
    return pod is None


def _retry_note(message: str | None) -> str | None:
    """What a new attempt keeps of its task's message: the previous attempt's failure, nothing else."""
    return message if message and message.startswith("attempt ") else None


def _blocker(task: Task, records: Mapping[str, TaskStatus]) -> str | None:
    """Why a task whose dependencies all ended must be Skipped, or None when it may run."""
    wanted = {w.task: w.phase for w in task.when or ()}
    for dep in task.dependencies or ():
        phase = records[dep].phase
        required = wanted.get(dep, "Succeeded")
        if phase == required:
            continue
        if dep in wanted:
            return f"when: {dep} ended {phase}, not {required}"
        return f"dependency {dep} {'failed' if phase == 'Failed' else 'was skipped'}"
    return None


def _own(records: dict[str, TaskStatus], previous: Mapping[str, TaskStatus], name: str) -> TaskStatus:
    """The record of task ``name`` to change: a copy of the one in ``previous`` the first time."""
    rec = records[name]
    if rec is previous.get(name):
        rec = records[name] = rec.model_copy()
    return rec


def advance(
    spec: ObservatorySpec,
    order: Sequence[Task],
    *,
    workflow: str,
    namespace: str | None,
    run: int,
    previous: Sequence[TaskStatus],
    pods: RunPods,
    now: datetime,
    may_start: bool,
) -> RunResult:
    """The next state of one run; ``order`` is ``spec.tasks`` in dependency order."""
    old = {t.name: t for t in previous}
    records: dict[str, TaskStatus] = {}
    result = RunResult(tasks=[])
    create: list[tuple[Task, int]] = []

    # The records of ``previous`` are never written into: one is copied before it changes, and most do
    # not (tasks that ended, tasks waiting for theirs), so most are not copied at all.
    for task in order:
        rec = old.get(task.name) or TaskStatus(name=task.name)
        seen = pods.get(task.name, {})
        newest = max(seen, default=0)
        adopt = rec.phase not in FINAL and newest > (rec.attempts or 0)
        if adopt or rec.phase == "Running":
            rec = rec.model_copy()
        records[task.name] = rec
        if adopt:
            # a pod this run started that the record does not know yet: created by this reconcile, or
            # by one whose status write was lost (the operator was killed in between)
            pod = seen[newest]
            rec.phase, rec.attempts = "Running", newest
            rec.pod_name = pod["metadata"]["name"]
            rec.started_at = adopted_start(outcome(pod), now)
            rec.finished_at, rec.retry_at, rec.exit_code = None, None, None
            rec.message = _retry_note(rec.message)
        if rec.phase == "Running" and _follow(task, rec, seen, now, result):
            create.append((task, rec.attempts or 1))

    running = sum(1 for r in records.values() if r.phase == "Running")
    capacity = spec.max_concurrent - running if spec.max_concurrent else len(order)
    failed = [n for n, r in records.items() if r.phase == "Failed"]
    for task in order:
        rec = records[task.name]
        if rec.phase != "Pending":
            continue
        if spec.fail_fast and failed:
            rec = _own(records, old, task.name)
            rec.phase, rec.retry_at = "Skipped", None
            rec.message = f"failFast: task {failed[0]} failed"
            continue
        if any(records[d].phase not in FINAL for d in task.dependencies or ()):
            continue
        rec = _own(records, old, task.name)
        reason = _blocker(task, records)
        if reason is not None:
            rec.phase, rec.message = "Skipped", reason
            continue
        if rec.retry_at and (retry_at := read_time(rec.retry_at)) and retry_at > now:
            if may_start:
                _requeue(result, retry_at, now)
            continue
        if not may_start or capacity <= 0:
            continue
        capacity -= 1
        attempt = (rec.attempts or 0) + 1
        rec.phase, rec.attempts = "Running", attempt
        rec.pod_name = pod_name(workflow, run, task.name, attempt)
        rec.started_at, rec.finished_at, rec.retry_at, rec.exit_code = stamp(now), None, None, None
        rec.message = _retry_note(rec.message)
        create.append((task, attempt))
        if task.timeout:  # look again at its deadline, as for a task found Running (:func:`_follow`)
            _requeue(result, later(now, parse_duration(task.timeout)), now)

    result.tasks = [records[t.name] for t in spec.tasks]
    result.create = [build_pod(workflow, namespace, run, task, attempt) for task, attempt in create]
    return result
