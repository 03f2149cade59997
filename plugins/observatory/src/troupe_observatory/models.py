"""The Observatory kind: spec and status models (the CRD schema source) and the kind declaration."""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, field_validator

from troupe import (
    MAX_DURATION,
    ChildKind,
    Duration,
    KindSpec,
    PrinterColumn,
    SpecModel,
    StatusModel,
    parse_duration,
)

#: Task names: DNS labels starting with a letter, so they can be label values and pod-name parts.
TASK_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
#: A rule checking that every dependency names a task compares all pairs of tasks; measured against the
#: API server it fits the CEL cost budget only up to about 550 tasks (16 dependencies each), and we want
#: 1,000-task workflows. So that check (and the cycle check) lives in ``troupe_validate`` instead.
MAX_TASKS = 1000
MAX_DEPENDENCIES = 32
MAX_WHEN = 8
#: The longest timeout: a pod's activeDeadlineSeconds is an int32.
MAX_TIMEOUT_SECONDS = 2**31 - 1
#: The longest starting deadline, as for every duration: 100 years (in seconds, it fits an int64).
MAX_DEADLINE_SECONDS = int(MAX_DURATION.total_seconds())
#: A Kubernetes quantity (resource.Quantity): a decimal with an optional SI, binary or exponent suffix.
_QUANTITY = re.compile(
    r"^[+]?([0-9]{1,18}(\.[0-9]{0,18})?|\.[0-9]{1,18})([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]{1,3})?$"
)

TaskName = Annotated[str, Field(min_length=1, max_length=63)]
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _quantity(value: object) -> object:
    """One message for a bad quantity (a union would report each branch: "not an integer", ...)."""
    if isinstance(value, str) and _QUANTITY.match(value):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2**53:
        return value
    raise ValueError(
        f"{value!r} is not a quantity: use a number or a quantity such as 500m, 1.5, 64Mi or 2Gi"
    )


#: A resource amount: a whole number, or a quantity string such as 100m, 1.5, 64Mi, 1e3. Checked by the
#: operator: the CRD's int-or-string field cannot carry the pattern.
Quantity = Annotated[int | str, BeforeValidator(_quantity)]

TaskPhase = Literal["Pending", "Running", "Succeeded", "Failed", "Skipped"]
RunPhase = Literal["Pending", "Running", "Succeeded", "Failed"]


class KeyRef(SpecModel):
    """A key of a Secret or ConfigMap in the workflow's namespace."""

    name: str = Field(min_length=1, max_length=253)
    """The Secret's or ConfigMap's name."""
    key: str = Field(min_length=1, max_length=253)
    """The key."""
    optional: bool | None = None
    """Start the pod even when the key is missing."""


class FieldRef(SpecModel):
    """A field of the pod (core/v1 ObjectFieldSelector), e.g. metadata.name or status.podIP."""

    field_path: str = Field(min_length=1, max_length=256)
    """The field's path."""
    api_version: str | None = Field(default=None, max_length=64)
    """The schema version the path is written in (v1)."""


class ResourceFieldRef(SpecModel):
    """A resource of the container (core/v1 ResourceFieldSelector), e.g. limits.memory."""

    resource: str = Field(min_length=1, max_length=64)
    """The resource, e.g. limits.cpu."""
    container_name: str | None = Field(default=None, max_length=63)
    """The container (main, the only one)."""
    divisor: Quantity | None = None
    """The unit of the value, e.g. 1Mi."""


class EnvVarSource(SpecModel):
    """Where the value comes from (core/v1 EnvVarSource): exactly one source."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.secretKeyRef) ? 1 : 0) + (has(self.configMapKeyRef) ? 1 : 0) "
                    "+ (has(self.fieldRef) ? 1 : 0) + (has(self.resourceFieldRef) ? 1 : 0) == 1",
                    "message": "valueFrom needs exactly one of secretKeyRef, configMapKeyRef, fieldRef, "
                    "resourceFieldRef",
                }
            ]
        }
    )

    secret_key_ref: KeyRef | None = None
    """A key of a Secret."""
    config_map_key_ref: KeyRef | None = None
    """A key of a ConfigMap."""
    field_ref: FieldRef | None = None
    """A field of the pod."""
    resource_field_ref: ResourceFieldRef | None = None
    """A resource of the container."""


class EnvVar(SpecModel):
    """An environment variable of the task's container (core/v1 EnvVar)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.value) && has(self.valueFrom))",
                    "message": "use value or valueFrom, not both",
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=256, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    """The variable's name (letters, digits, '_', '-', '.'; not starting with a digit)."""
    value: str | None = None
    """Its value."""
    value_from: EnvVarSource | None = None
    """Where its value comes from: a Secret's or ConfigMap's key, a pod field, a container resource."""


class Resources(SpecModel):
    """CPU and memory of the task's container (core/v1 ResourceRequirements)."""

    requests: dict[str, Quantity] | None = Field(default=None, max_length=16)
    """Minimum resources, e.g. {cpu: 100m, memory: 64Mi}."""
    limits: dict[str, Quantity] | None = Field(default=None, max_length=16)
    """Maximum resources."""


class Backoff(SpecModel):
    """The wait between a failed attempt and the next: duration * factor^(attempt-1), at most maxDuration."""

    duration: Duration = "10s"
    """The wait after the first failed attempt (at most 36500d, like every duration)."""
    factor: int = Field(default=2, ge=1, le=10)
    """What the wait is multiplied by after each further failed attempt."""
    max_duration: Duration = "10m"
    """The longest wait."""


class When(SpecModel):
    """A condition on the result of a dependency: the task runs only if it holds, else it is Skipped."""

    task: TaskName
    """The dependency whose result is looked at (must be listed in dependencies)."""
    phase: Literal["Succeeded", "Failed", "Skipped"] = "Succeeded"
    """The phase the dependency must have ended in."""


def _bad_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    return bool(
        (prefix and (len(prefix) > 253 or not _SUBDOMAIN.match(prefix)))
        or not _LABEL_VALUE.match(name)
        or not name
    )


class TaskMetadata(SpecModel):
    """Labels and annotations copied onto the task's pods: checked as the API server checks a pod's, so a
    bad one is named here rather than in the pod's refusal."""

    labels: dict[str, str] | None = Field(default=None, max_length=64)
    """Extra pod labels (the operator's own labels win on a clash)."""
    annotations: dict[str, str] | None = Field(default=None, max_length=64)
    """Extra pod annotations."""

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key, text in (value or {}).items():
            if _bad_key(key):
                raise ValueError(
                    f"label key {key!r} is not a valid key ([prefix/]name, name <= 63 characters)"
                )
            if not _LABEL_VALUE.match(text):
                raise ValueError(
                    f"label {key}: {text!r} is not a valid label value (at most 63 letters, digits, "
                    "'-', '_', '.', starting and ending with a letter or digit)"
                )
        return value

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key in value or {}:
            if _bad_key(key):
                raise ValueError(
                    f"annotation key {key!r} is not a valid key ([prefix/]name, name <= 63 characters)"
                )
        return value


class Task(SpecModel):
    """One node of the DAG: a container run to completion in its own pod."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.dependencies) || !(self.name in self.dependencies)",
                    "message": "a task cannot depend on itself",
                },
                {
                    "rule": "!has(self.when) || self.when.all(w, has(self.dependencies) "
                    "&& w.task in self.dependencies)",
                    "message": "when[].task must be one of the task's dependencies",
                },
            ]
        }
    )

    name: str = Field(min_length=1, max_length=63, pattern=TASK_NAME_PATTERN)
    """Unique within the workflow; a DNS label starting with a letter."""
    image: str = Field(min_length=1, max_length=512)
    """The container image."""
    command: list[str] | None = None
    """The container's entrypoint (the image's when unset)."""
    args: list[str] | None = None
    """Arguments to the entrypoint."""
    dependencies: list[TaskName] | None = Field(
        default=None, max_length=MAX_DEPENDENCIES, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Names of tasks that must succeed before this one starts."""
    env: list[EnvVar] | None = Field(
        default=None,
        max_length=128,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Environment variables of the container (at most 128); names are unique."""
    resources: Resources | None = None
    """Resource requests and limits of the container."""
    retries: int = Field(default=0, ge=0, le=10)
    """How many times a failed attempt is retried (a new pod each time) before the task fails."""
    backoff: Backoff | None = None
    """The wait between attempts (10s, doubling, at most 10m when unset)."""
    timeout: Duration | None = None
    """Longest run of one attempt (e.g. 30s, 15m; more than 0s, at most 24855d): the pod's
    activeDeadlineSeconds, enforced by the operator too. An attempt that times out fails (and is retried
    if retries remain)."""
    when: list[When] | None = Field(default=None, max_length=MAX_WHEN)
    """Conditions on dependencies' results; all must hold for the task to run. A dependency named here
    may end in the phase the condition asks for (even Failed) without skipping this task."""
    metadata: TaskMetadata | None = None
    """Labels and annotations for the task's pods."""

    @field_validator("timeout")
    @classmethod
    def _timeout_fits_a_pod(cls, value: str | None) -> str | None:
        seconds = parse_duration(value).total_seconds() if value is not None else 1
        if seconds <= 0:
            raise ValueError(f"timeout {value!r} ends every attempt before it starts: use more than 0s")
        if seconds > MAX_TIMEOUT_SECONDS:
            raise ValueError(
                f"timeout {value!r} is longer than a pod's activeDeadlineSeconds allows: at most "
                f"{MAX_TIMEOUT_SECONDS}s (24855d, about 68 years)"
            )
        return value


class CatchUp(SpecModel):
    """What to do with schedule ticks that passed while the operator was not running."""

    policy: Literal["Skip", "RunOnce", "RunAll"] = "Skip"
    """Skip: run none of them. RunOnce: one run for all of them. RunAll: one run per missed tick, oldest
    first, at most ``limit``."""
    limit: int = Field(default=5, ge=1, le=100)
    """RunAll: the most recent missed ticks to run; older ones are skipped."""


class PodGC(SpecModel):
    """When finished task pods are deleted (they are kept for their logs by default)."""

    strategy: Literal[
        "Never", "OnPodSuccess", "OnPodCompletion", "OnWorkflowSuccess", "OnWorkflowCompletion"
    ] = "Never"
    """Never: pods stay until the workflow is deleted or their run leaves the history. OnPodSuccess /
    OnPodCompletion: a pod goes as soon as it succeeded / finished. OnWorkflowSuccess /
    OnWorkflowCompletion: a run's pods go when the run succeeded / finished."""


class ObservatorySpec(SpecModel):
    """A DAG of tasks, each run in a pod once its dependencies succeeded; once, or on a cron schedule."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.schedule) || !has(self.timeZone)",
                    "message": "timeZone needs a schedule",
                },
            ]
        }
    )

    tasks: list[Task] = Field(
        min_length=1,
        max_length=MAX_TASKS,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """The tasks of the DAG; names are unique."""
    schedule: str | None = Field(
        default=None,
        max_length=128,
        pattern=r"^(@[a-z]+|\S+( +\S+){4})$",
    )
    """A cron schedule (five fields, or @hourly/@daily/...): each tick starts a new run. Without it the
    workflow runs once."""
    time_zone: str | None = Field(default=None, min_length=1, max_length=64)
    """The IANA time zone of the schedule (default UTC), e.g. Europe/Paris."""
    suspend: bool = False
    """No new task and no new run starts while true; running tasks finish."""
    max_concurrent: int | None = Field(default=None, ge=1, le=10000)
    """At most this many task pods of a run at once (unlimited when unset)."""
    fail_fast: bool = False
    """When a task fails, start no further task of the run (pending ones are Skipped). Otherwise only the
    failed task's descendants are Skipped and independent branches run to their end."""
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = "Allow"
    """A tick while the previous run is still active: Allow starts another run next to it, Forbid skips
    the tick, Replace stops the active run (its running pods are deleted) and starts the new one."""
    starting_deadline_seconds: int | None = Field(default=None, ge=0, le=MAX_DEADLINE_SECONDS)
    """A tick that could not start within this many seconds is not run at all."""
    history_limit: int = Field(default=5, ge=1, le=100)
    """Finished runs kept in status.history; pods of older runs are deleted."""
    catch_up: CatchUp | None = None
    """Ticks missed while the operator was away (Skip when unset)."""
    pod_gc: PodGC | None = Field(default=None, alias="podGC")
    """When finished pods are deleted (Never when unset)."""

    @cached_property
    def memo(self) -> dict[Any, Any]:
        """What is derived from this spec alone (the dependency order, the checks of the graph), kept with
        it: the core parses a spec once per generation and hands the same model to every reconcile, and
        a large workflow's order and checks cost more than the rest of a reconcile that starts one pod.
        Not a field: neither in the schema nor in a dump."""
        return {}


class TaskStatus(SpecModel):
    """One task of a run. Compact on purpose: unset fields are left out."""

    model_config = ConfigDict(frozen=False)

    name: str
    """The task."""
    phase: TaskPhase = "Pending"
    """Pending, Running, Succeeded, Failed or Skipped."""
    attempts: int | None = None
    """Attempts started so far."""
    pod_name: str | None = None
    """The pod of the latest attempt."""
    started_at: str | None = None
    """When the latest attempt's pod was created."""
    finished_at: str | None = None
    """When the task ended (or its latest attempt failed)."""
    exit_code: int | None = None
    """The exit code of the latest attempt's container."""
    message: str | None = None
    """Why the task is in its phase (failure, skip, retry)."""
    retry_at: str | None = None
    """When the next attempt may start after a failed one."""


class RunState(SpecModel):
    """A run still in progress (besides the current one: only with concurrencyPolicy Allow)."""

    model_config = ConfigDict(frozen=False)

    run: int
    """The run number."""
    scheduled_time: str | None = None
    """The tick that started it."""
    start_time: str | None = None
    """When it started."""
    tasks: list[TaskStatus] = Field(default_factory=list)
    """Its tasks."""


class RunSummary(SpecModel):
    """A finished run, as kept in the history."""

    model_config = ConfigDict(frozen=False)

    run: int
    """The run number."""
    phase: RunPhase
    """Succeeded or Failed."""
    scheduled_time: str | None = None
    """The tick that started it."""
    start_time: str | None = None
    """When it started."""
    completion_time: str | None = None
    """When it ended."""
    succeeded: int = 0
    """Tasks that succeeded."""
    failed: int = 0
    """Tasks that failed."""
    skipped: int = 0
    """Tasks that were skipped."""
    message: str | None = None
    """Why it failed."""


class ObservatoryStatus(StatusModel):
    """The current run's tasks, the runs still active, and a bounded history."""

    run: int | None = None
    """The current (latest) run's number; runs are numbered from 1."""
    scheduled_time: str | None = None
    """The tick that started the current run (scheduled workflows)."""
    start_time: str | None = None
    """When the current run started."""
    completion_time: str | None = None
    """When the current run ended."""
    progress: str | None = None
    """Succeeded tasks of the current run over all of them, e.g. 3/5."""
    tasks: list[TaskStatus] = Field(default_factory=list)
    """The current run's tasks, in spec order."""
    active_runs: list[RunState] = Field(default_factory=list)
    """Older runs still in progress (concurrencyPolicy Allow)."""
    history: list[RunSummary] = Field(default_factory=list)
    """Finished runs, newest first, at most historyLimit."""
    last_schedule_time: str | None = None
    """The latest tick handled (run, skipped or missed)."""
    next_schedule_time: str | None = None
    """The next tick."""


OBSERVATORY = KindSpec(
    operator="observatory",
    group="workflow.seventh-horizon.io",
    version="v1alpha1",
    kind="Observatory",
    plural="observatories",
    singular="observatory",
    spec_model=ObservatorySpec,
    status_model=ObservatoryStatus,
    short_names=("obs",),
    categories=("troupe", "workflows"),
    printer_columns=(
        PrinterColumn("Phase", ".status.phase", description="Phase of the current run"),
        PrinterColumn("Tasks", ".status.progress", description="Succeeded tasks of the current run"),
        PrinterColumn("Run", ".status.run", type="integer", description="The current run's number"),
        PrinterColumn("Schedule", ".spec.schedule", priority=1),
        PrinterColumn("Last Schedule", ".status.lastScheduleTime", type="date", priority=1),
    ),
    # ``reads``: what pods.py reads of a task pod beyond what it applied, where a change decides anything:
    # its end (its container's, or the pod's reason). The scheduler binding it (its node, the PodScheduled
    # condition), the kubelet's bookkeeping (IPs, QoS class) and its start (phase Running, startTime: a
    # timeout's deadline is looked at again when the one counted from its creation comes) reconcile
    # nothing: a level of a hundred-task workflow started ten reconciles that changed nothing.
    children=(
        ChildKind(
            "v1",
            "Pod",
            "pods",
            reads=(
                "metadata.labels",
                "metadata.creationTimestamp",
                "status.reason",
                "status.message",
                "status.containerStatuses.main.state.terminated",  # pods.CONTAINER
            ),
        ),
    ),
    description="A DAG workflow of pods, run once or on a cron schedule.",
    # A workflow's task list moves many times a second, and every write of a large Observatory costs the
    # API server whatever the patch's size (measured: 13 ms for one of 100 tasks on an idle cluster, 3 ms
    # for one of a single task; 35-140 ms each while a DAG ran). Progress every two seconds; a phase or
    # condition change still goes at once. With one second, a 100-task DAG of about a second wrote its
    # progress once more in half the runs, near the end, and the final Succeeded waited behind it.
    status_interval=2.0,
)
