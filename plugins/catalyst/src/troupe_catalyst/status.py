"""An Environment's progress, step by step: namespace, image (build), deploy; and its TTL.

Pure functions of the reconcile context. The long-running steps are the core's actions ``image`` and
``deploy``; their inputs carry an ``attempt`` number kept in ``status.retries``, because the core never
runs a step again for inputs it already ran: a failed step is retried by asking again with the next
attempt, after a backoff (10 s doubling to 5 minutes). A failure never leads to a deletion here: the
builders keep returning what exists, and the condition says what failed and when it is tried again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from troupe import (
    ActionRecord,
    Condition,
    Manifest,
    ReconcileContext,
    StatusUpdate,
    isoformat,
    parse_duration,
    parse_time,
)
from troupe_catalyst.builders import Target, helm_values, image_repository, project_namespace
from troupe_catalyst.config import Settings
from troupe_catalyst.models import EnvironmentSpec, ProjectSpec
from troupe_catalyst.names import build_job_name
from troupe_catalyst.registry import parse_repository

FIRST_RETRY = 10.0
MAX_RETRY = 300.0
#: A build that succeeded but whose image the registry does not show yet: how many checks before Failed.
MAX_PUSH_CHECKS = 6


def backoff(failures: int) -> float:
    return float(min(FIRST_RETRY * 2 ** max(failures - 1, 0), MAX_RETRY))


def error_reason(message: str, default: str) -> str:
    """``Reason: text`` as the deploy step raises it, else ``default``."""
    head, sep, _ = message.partition(": ")
    return head if sep and head.isalnum() and head[:1].isupper() else default


@dataclass
class Step:
    """One action as the status hook sees it: its inputs (with attempt) and where it stands."""

    name: str
    inputs: dict[str, Any]
    record: ActionRecord | None
    retry: dict[str, Any]

    @property
    def current(self) -> ActionRecord | None:
        return self.record if self.record is not None and self.record.matches(self.inputs) else None

    @property
    def succeeded(self) -> bool:
        return self.current is not None and self.current.phase == "Succeeded"

    @property
    def failed(self) -> bool:
        return self.current is not None and self.current.phase == "Failed"

    @property
    def result(self) -> dict[str, Any]:
        return self.current.result if self.current is not None else {}


def step(ctx: ReconcileContext[EnvironmentSpec], name: str, inputs: dict[str, Any]) -> Step:
    retry = dict(((ctx.status.get("retries") or {}).get(name)) or {"attempt": 0, "failures": 0})
    return Step(name, {**inputs, "attempt": retry.get("attempt", 0)}, ctx.actions.get(name), retry)


@dataclass
class Progress:
    """What the status hook accumulates: actions to ask for, retry bookkeeping, the next wake-up."""

    now: datetime
    actions: dict[str, dict[str, Any]] = field(default_factory=dict)
    retries: dict[str, dict[str, Any]] = field(default_factory=dict)
    requeue: float | None = None

    def wake(self, seconds: float) -> None:
        seconds = max(seconds, 1.0)
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)

    def ask(self, s: Step) -> None:
        """Ask for the step; a failed one again with the next attempt once its backoff has passed."""
        self.actions[s.name] = s.inputs
        self.retries[s.name] = s.retry

    def ok(self, s: Step) -> None:
        """The step did what was wanted: its backoff starts afresh."""
        self.retries[s.name] = {**s.retry, "failures": 0}

    def retry_at(self, s: Step) -> datetime:
        """When a failed step runs again; asks for the next attempt if that time has come."""
        assert s.current is not None
        failures = int(s.retry.get("failures", 0)) + 1
        finished = parse_time(s.current.finishedAt) or self.now
        at = finished + timedelta(seconds=backoff(failures))
        if self.now >= at:
            attempt = int(s.retry.get("attempt", 0)) + 1
            self.retries[s.name] = {"attempt": attempt, "failures": failures}
            self.actions[s.name] = {**s.inputs, "attempt": attempt}
        else:
            self.wake((at - self.now).total_seconds())
        return at


def image_step(ctx: ReconcileContext[EnvironmentSpec], project: ProjectSpec, settings: Settings) -> Step:
    repository = image_repository(project)
    secret = project.build.registry_secret_ref
    built = build_record(ctx)
    return step(
        ctx,
        "image",
        {
            "repository": repository,
            "tag": ctx.spec.source.commit_sha,
            "secret": [project_namespace(ctx.body), secret.name] if secret else None,
            "insecure": parse_repository(repository, "x").registry in settings.insecure_registries,
            # after a build, the check runs again (the core never repeats a step for the same inputs)
            "stage": "after-build" if built.get("phase") == "Succeeded" else "check",
        },
    )


def build_record(ctx: ReconcileContext[EnvironmentSpec]) -> dict[str, Any]:
    """The last build Job's record, if it is of the current commit."""
    build = ctx.status.get("build") or {}
    return dict(build) if build.get("commit") == ctx.spec.source.commit_sha else {}


def wants_build_job(ctx: ReconcileContext[EnvironmentSpec], project: ProjectSpec, settings: Settings) -> bool:
    """A build Job exists while the image is known missing and this commit's build has not ended."""
    if ctx.spec.type != "development" or build_record(ctx).get("phase") in ("Succeeded", "Failed"):
        return False
    s = image_step(ctx, project, settings)
    return s.succeeded and s.inputs["stage"] == "check" and not s.result.get("exists")


def deploy_inputs(
    t: Target, project: ProjectSpec, spec: EnvironmentSpec, project_ns: str, settings: Settings
) -> dict[str, Any]:
    secret = project.source.secret_ref
    repository = image_repository(project)
    inputs: dict[str, Any] = {
        "type": project.deployment.type,
        "repositoryUrl": project.source.repository_url,
        "commit": spec.source.commit_sha,
        "path": project.deployment.path,
        "secret": [project_ns, secret.name] if secret else None,
        "namespace": t.namespace,
        "release": t.release,
        "suspend": spec.suspend,
    }
    if project.deployment.type == "helm":
        inputs["values"] = helm_values(t, project, spec, settings)
    else:  # plain manifests: the first container of each workload gets the image and the env vars
        inputs["image"] = f"{repository}:{spec.source.commit_sha}" if repository else ""
        inputs["env"] = [{"name": v.name, "value": v.value} for v in spec.config.env_vars]
    return inputs


def job_state(job: Manifest) -> tuple[str, str]:
    """Running, Succeeded or Failed, and the Job's own reason and message when it failed."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "Succeeded", ""
        if cond.get("type") in ("Failed", "FailureTarget"):
            return "Failed", f"{cond.get('reason', '')}: {cond.get('message', '')}".strip(": ")
    return "Running", ""


def ttl_state(
    ctx: ReconcileContext[EnvironmentSpec],
) -> tuple[dict[str, Any], Condition | None, bool, float | None]:
    """``lastChangeAt``/``expiresAt`` fields, an ExpiringSoon condition, whether it is time, next wake-up."""
    status = ctx.status
    changed = status.get("observedGeneration") != ctx.generation or not status.get("lastChangeAt")
    last = ctx.now if changed else (parse_time(status.get("lastChangeAt")) or ctx.now)
    fields: dict[str, Any] = {"lastChangeAt": isoformat(last), "expiresAt": None}
    if not ctx.spec.ttl:
        return fields, None, False, None
    ttl = parse_duration(ctx.spec.ttl)
    expires = last + ttl
    fields["expiresAt"] = isoformat(expires)
    warn_at = expires - min(ttl / 4, timedelta(minutes=10))
    if ctx.now >= expires:
        return fields, None, True, None
    if ctx.now >= warn_at:
        message = (
            f"deleted at {isoformat(expires)}: spec.ttl {ctx.spec.ttl} after the last change of its spec"
        )
        cond = Condition(type="ExpiringSoon", status="True", reason="TTLExpiring", message=message)
        return fields, cond, False, (expires - ctx.now).total_seconds()
    cond = Condition(type="ExpiringSoon", status="False", reason="TTLRunning", message="")
    return fields, cond, False, (warn_at - ctx.now).total_seconds()


def environment_status(
    ctx: ReconcileContext[EnvironmentSpec], project: ProjectSpec | None, t: Target, settings: Settings
) -> StatusUpdate:
    progress = Progress(ctx.now)
    ttl_fields, expiring, expired, wake = ttl_state(ctx)
    if wake is not None:
        progress.wake(wake)
    update = _progress(ctx, project, t, settings, progress)
    update.fields.update(ttl_fields)
    if expiring is not None:
        update.conditions.append(expiring)
    if expired:
        update.delete = True
    update.actions = progress.actions
    if progress.retries:
        update.fields["retries"] = progress.retries
    update.requeue_after = progress.requeue
    return update


def _cond(type_: str, ok: bool | None, reason: str, message: str = "") -> Condition:
    if ok is None:
        return Condition(type=type_, status="Unknown", reason=reason, message=message)
    return Condition(type=type_, status="True" if ok else "False", reason=reason, message=message)


def _progress(
    ctx: ReconcileContext[EnvironmentSpec],
    project: ProjectSpec | None,
    t: Target,
    settings: Settings,
    progress: Progress,
) -> StatusUpdate:
    ref = f"{project_namespace(ctx.body)}/{ctx.spec.project_ref.name}"
    if project is None:
        message = (
            f"Project {ref} does not exist: create it (or fix spec.projectRef); this proceeds when it appears"
        )
        return StatusUpdate(
            phase="Failed",
            conditions=[
                _cond("ProjectReady", False, "ProjectMissing", message),
                _cond("Ready", False, "ProjectMissing", message),
            ],
        )
    conditions = [_cond("ProjectReady", True, "ProjectFound", ref)]
    if ctx.spec.type == "development" and not image_repository(project):
        message = (
            f"Project {ref} has no spec.deployment.values.image.repository: set the image to build and deploy"
        )
        conditions += [_cond("Ready", False, "InvalidProject", message)]
        return StatusUpdate(phase="Failed", conditions=conditions)
    if ctx.children.named("Namespace", t.namespace) is None:
        conditions += [
            _cond("NamespaceReady", False, "Creating", f"creating namespace {t.namespace}"),
            _cond("Ready", False, "Pending", f"creating namespace {t.namespace}"),
        ]
        return StatusUpdate(phase="Pending", conditions=conditions)
    fields: dict[str, Any] = {"namespace": t.namespace, "url": t.url, "release": t.release}
    conditions.append(_cond("NamespaceReady", True, "Created", t.namespace))
    update = StatusUpdate(conditions=conditions, fields=fields)
    if ctx.spec.type == "development" and not _image_ready(ctx, project, t, settings, progress, update):
        return update
    if ctx.spec.type == "deployment":
        conditions.append(
            _cond("BuildReady", True, "NotRequired", "deployment environments use an existing image")
        )
    _deploy(ctx, project, t, settings, progress, update)
    return update


def _image_ready(
    ctx: ReconcileContext[EnvironmentSpec],
    project: ProjectSpec,
    t: Target,
    settings: Settings,
    progress: Progress,
    update: StatusUpdate,
) -> bool:
    s = image_step(ctx, project, settings)
    progress.ask(s)
    image = f"{s.inputs['repository']}:{s.inputs['tag']}"
    build = build_record(ctx)
    job_name = build_job_name(ctx.spec.source.commit_sha)

    def waiting(phase: str, ok: bool | None, reason: str, message: str) -> bool:
        update.phase = phase
        update.conditions += [
            _cond("BuildReady", ok, reason, message),
            _cond("Ready", False, reason, message),
        ]
        return False

    if build.get("phase") == "Failed":
        job, why = build.get("job"), build.get("reason") or "no reason given"
        message = (
            f"build Job {t.namespace}/{job} failed ({why}); its logs: kubectl logs -n {t.namespace} "
            f"job/{job}; push a new commit to build again"
        )
        return waiting("Failed", False, "BuildFailed", message)
    if s.current is None or s.current.phase == "Running":
        return waiting("Building", None, "CheckingImage", f"asking the registry for {image}")
    if s.failed:
        at = progress.retry_at(s)
        message = f"{s.current.message}; nothing was changed; checking again at {isoformat(at)}"
        return waiting("Failed", False, "RegistryUnavailable", message)
    if s.result.get("exists"):
        progress.ok(s)
        update.fields["image"] = image
        update.conditions.append(
            _cond("BuildReady", True, "ImageExists", f"{image} ({s.result.get('digest')})")
        )
        return True
    if s.inputs["stage"] == "after-build":  # built, but the push is not visible yet: look again
        failures = int(s.retry.get("failures", 0))
        if failures + 1 >= MAX_PUSH_CHECKS:
            message = f"build Job {job_name} succeeded but {image} is not in the registry: check its push"
            return waiting("Failed", False, "ImageNotPushed", message)
        at = progress.retry_at(s)
        return waiting(
            "Building",
            False,
            "WaitingForPush",
            f"{image} not in the registry yet; checking at {isoformat(at)}",
        )
    job = ctx.children.named("Job", job_name, namespace=t.namespace)
    if job is None:
        return waiting("Building", False, "Building", f"{image} is missing: creating build Job {job_name}")
    state, reason = job_state(job)
    if state != "Running":
        job_status = job.get("status") or {}
        update.fields["build"] = {
            "commit": ctx.spec.source.commit_sha,
            "job": job_name,
            "phase": state,
            "reason": reason,
            "startedAt": job_status.get("startTime") or job["metadata"].get("creationTimestamp"),
            "finishedAt": job_status.get("completionTime") or isoformat(ctx.now),
        }
        progress.wake(1)
    return waiting("Building", False, "Building", f"build Job {t.namespace}/{job_name}: {state}")


def _deploy(
    ctx: ReconcileContext[EnvironmentSpec],
    project: ProjectSpec,
    t: Target,
    settings: Settings,
    progress: Progress,
    update: StatusUpdate,
) -> None:
    s = step(ctx, "deploy", deploy_inputs(t, project, ctx.spec, project_namespace(ctx.body), settings))
    progress.ask(s)
    update.fields["deployType"] = project.deployment.type
    what = "suspending" if ctx.spec.suspend else f"deploying {ctx.spec.source.commit_sha}"

    def show(phase: str, ok: bool | None, reason: str, message: str) -> None:
        update.phase = phase
        update.conditions += [
            _cond("DeploymentReady", ok, reason, message),
            _cond("Ready", ok, reason, message),
        ]

    if s.current is None or s.current.phase == "Running":
        return show("Deploying", False, "Deploying", f"{what} ({project.deployment.type})")
    if s.failed:
        at = progress.retry_at(s)
        reason = error_reason(s.current.message, "DeployFailed")
        message = f"{s.current.message}; nothing was removed; trying again at {isoformat(at)}"
        return show("Failed", False, reason, message)
    if ctx.spec.suspend:
        progress.ok(s)
        return show("Suspended", False, "Suspended", "workloads scaled to zero; namespace and release kept")
    progress.ok(s)
    revision = s.result.get("revision") or None
    update.fields["revision"] = revision
    where = f"release {t.release} revision {revision}" if revision else f"{project.deployment.type} applied"
    show(
        "Ready",
        True,
        "Deployed",
        f"{ctx.spec.source.commit_sha}: {where}, {s.result.get('workloads', 0)} workloads ready",
    )
