"""An Environment's progress through its phases, from chosen children, Project and action records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from troupe import ActionRecord, ChildKey, Children, ReconcileContext, StatusUpdate
from troupe_catalyst import environment
from troupe_catalyst.builders import target
from troupe_catalyst.config import Settings
from troupe_catalyst.environment import ENVIRONMENT, troupe_build_resources
from troupe_catalyst.models import EnvironmentSpec, ProjectSpec
from troupe_catalyst.status import environment_status, wants_build_job

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SETTINGS = Settings(preview_domain="preview.test", insecure_registries=("reg.test:5000",))


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def project_body(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "source": {"repositoryUrl": "https://git.test/org/app.git", "branch": "main"},
        "deployment": {
            "type": "helm",
            "path": "charts/app",
            "values": {"image": {"repository": "reg.test:5000/org/app"}},
        },
        "resources": {"defaultQuota": {"cpu": "1", "memory": "2Gi"}},
    }
    base.update(spec)
    return {
        "apiVersion": "catalyst.catalyst.dev/v1alpha1",
        "kind": "Project",
        "metadata": {"name": "app", "namespace": "team"},
        "spec": base,
    }


def env_body(
    spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None, **meta: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "catalyst.catalyst.dev/v1alpha1",
        "kind": "Environment",
        "metadata": {
            "name": "pr-1",
            "namespace": "team-app",
            "uid": "u1",
            "generation": 1,
            "labels": {"catalyst.dev/team": "team"},
            **meta,
        },
        "spec": {
            "projectRef": {"name": "app"},
            "source": {"commitSha": "abc123", "branch": "feat"},
            **(spec or {}),
        },
        "status": status or {},
    }


def context(
    body: dict[str, Any],
    *,
    project: dict[str, Any] | None = None,
    children: list[dict[str, Any]] = (),  # type: ignore[assignment]
    now: datetime = T0,
) -> ReconcileContext[EnvironmentSpec]:
    kids = Children({ChildKey.of(c): c for c in children})
    related = Children({ChildKey.of(project): project} if project else {})
    return ReconcileContext(
        kind=ENVIRONMENT,
        body=body,
        spec=EnvironmentSpec.model_validate(body["spec"]),
        now=now,
        children=kids,
        related=related,
    )


def record(inputs: dict[str, Any], phase: str, at: datetime = T0, **result: Any) -> dict[str, Any]:
    from troupe.context import action_digest

    rec = ActionRecord(digest=action_digest(inputs), phase=phase, startedAt=iso(at), finishedAt=iso(at))  # type: ignore[arg-type]
    rec.result = result
    if phase == "Failed":
        rec.message = str(result.pop("message", "boom"))
        rec.result = {}
    return rec.model_dump()


NS = "team-app-pr-1"


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(environment, "_settings", SETTINGS)


def run(
    body: dict[str, Any], *, project: dict[str, Any] | None = None, children: list[Any] = (), now: Any = T0
) -> StatusUpdate:  # type: ignore[assignment]
    ctx = context(body, project=project, children=children, now=now)
    spec = ProjectSpec.model_validate(project["spec"]) if project else None
    return environment_status(ctx, spec, target(ctx.body, ctx.spec, SETTINGS), SETTINGS)


def cond(update: StatusUpdate, type_: str) -> tuple[str, str, str]:
    c = next(c for c in update.conditions if c.type == type_)
    return c.status, c.reason, c.message


def namespace_child() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}, "status": {"phase": "Active"}}


def job(state: str | None) -> dict[str, Any]:
    conditions = (
        [{"type": state, "status": "True", "reason": "BackoffLimitExceeded", "message": "1 failed"}]
        if state
        else []
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "build-abc123", "namespace": NS, "creationTimestamp": iso(T0)},
        "status": {
            "conditions": conditions,
            "startTime": iso(T0),
            "completionTime": iso(T0 + timedelta(seconds=42)),
        },
    }


def test_a_missing_project_fails_clearly_and_creates_nothing() -> None:
    update = run(env_body())
    assert update.phase == "Failed"
    _, reason, message = cond(update, "Ready")
    assert reason == "ProjectMissing" and "team/app does not exist" in message and "proceeds" in message
    assert not update.actions
    assert troupe_build_resources(context(env_body())) == []


def test_first_the_namespace() -> None:
    update = run(env_body(), project=project_body())
    assert update.phase == "Pending" and cond(update, "NamespaceReady")[0] == "False"


def test_then_the_image_is_asked_for_with_every_input() -> None:
    update = run(env_body(), project=project_body(), children=[namespace_child()])
    assert update.phase == "Building" and cond(update, "BuildReady")[1] == "CheckingImage"
    assert update.actions["image"] == {
        "repository": "reg.test:5000/org/app",
        "tag": "abc123",
        "secret": None,
        "insecure": True,
        "stage": "check",
        "attempt": 0,
    }
    assert update.fields["url"] == "https://pr-1.preview.test" and update.fields["namespace"] == NS
    assert "deploy" not in update.actions


def image_inputs(stage: str = "check", attempt: int = 0) -> dict[str, Any]:
    return {
        "repository": "reg.test:5000/org/app",
        "tag": "abc123",
        "secret": None,
        "insecure": True,
        "stage": stage,
        "attempt": attempt,
    }


def test_a_missing_image_gets_a_build_job_and_its_end_is_recorded() -> None:
    status = {"actions": {"image": record(image_inputs(), "Succeeded", exists=False)}}
    body = env_body(status=status)
    project = project_body()
    ctx = context(body, project=project, children=[namespace_child()])
    assert wants_build_job(ctx, ProjectSpec.model_validate(project["spec"]), SETTINGS)
    built = troupe_build_resources(ctx) or []
    jobs = [m for m in built if m["kind"] == "Job"]
    assert len(jobs) == 1 and jobs[0]["metadata"] == {
        **jobs[0]["metadata"],
        "name": "build-abc123",
        "namespace": NS,
    }
    assert (
        "--destination=reg.test:5000/org/app:abc123"
        in jobs[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    update = run(body, project=project, children=[namespace_child()])
    assert update.phase == "Building" and "creating build Job" in cond(update, "BuildReady")[2]
    update = run(body, project=project, children=[namespace_child(), job("Complete")])
    assert update.fields["build"]["phase"] == "Succeeded" and update.fields["build"]["commit"] == "abc123"
    # recorded: the Job is no longer built (it is never deleted: prune=False), the image is checked again
    body2 = env_body(status={**status, "build": update.fields["build"]})
    ctx2 = context(body2, project=project, children=[namespace_child(), job("Complete")])
    assert not any(m["kind"] == "Job" for m in troupe_build_resources(ctx2) or [])
    update = run(body2, project=project, children=[namespace_child()])
    assert update.actions["image"]["stage"] == "after-build"


def test_a_failed_build_says_why_and_how_to_read_its_logs() -> None:
    status = {"actions": {"image": record(image_inputs(), "Succeeded", exists=False)}}
    update = run(env_body(status=status), project=project_body(), children=[namespace_child(), job("Failed")])
    build = update.fields["build"]
    update = run(
        env_body(status={**status, "build": build}), project=project_body(), children=[namespace_child()]
    )
    assert update.phase == "Failed"
    _, reason, message = cond(update, "BuildReady")
    assert (
        reason == "BuildFailed"
        and "BackoffLimitExceeded" in message
        and f"kubectl logs -n {NS} job/build-abc123" in message
    )


def test_an_existing_image_goes_to_deploy_with_injected_values() -> None:
    status = {"actions": {"image": record(image_inputs(), "Succeeded", exists=True, digest="sha256:d")}}
    update = run(
        env_body(spec={"config": {"envVars": [{"name": "DEBUG", "value": "true"}]}}, status=status),
        project=project_body(),
        children=[namespace_child()],
    )
    assert cond(update, "BuildReady")[:2] == ("True", "ImageExists")
    deploy = update.actions["deploy"]
    assert deploy["namespace"] == NS and deploy["release"] == "pr-1" and deploy["commit"] == "abc123"
    assert deploy["values"]["image"] == {"repository": "reg.test:5000/org/app", "tag": "abc123"}
    assert (
        deploy["values"]["ingress"]["host"] == "pr-1.preview.test"
        and deploy["values"]["ingress"]["tls"] is True
    )
    assert deploy["values"]["ingress"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    assert deploy["values"]["env"] == [{"name": "DEBUG", "value": "true"}]
    assert update.phase == "Deploying"


def ready_status(revision: int = 1) -> dict[str, Any]:
    image = record(image_inputs(), "Succeeded", exists=True)
    probe = run(
        env_body(status={"actions": {"image": image}}), project=project_body(), children=[namespace_child()]
    )
    deploy = record(probe.actions["deploy"], "Succeeded", revision=revision, workloads=1)
    return {"actions": {"image": image, "deploy": deploy}}


def test_a_deployed_release_is_ready_with_its_url_and_revision() -> None:
    update = run(env_body(status=ready_status(2)), project=project_body(), children=[namespace_child()])
    assert update.phase == "Ready" and update.fields["revision"] == 2
    assert cond(update, "DeploymentReady")[:2] == ("True", "Deployed")


def test_a_registry_error_retries_with_a_backoff_and_changes_nothing() -> None:
    failed = record(image_inputs(), "Failed", message="registry reg.test:5000 unreachable: refused")
    body = env_body(status={"actions": {"image": failed}})
    update = run(body, project=project_body(), children=[namespace_child()], now=T0 + timedelta(seconds=3))
    assert update.phase == "Failed"
    _, reason, message = cond(update, "BuildReady")
    assert (
        reason == "RegistryUnavailable"
        and "unreachable" in message
        and iso(T0 + timedelta(seconds=10)) in message
    )
    assert update.actions["image"]["attempt"] == 0 and 6 <= (update.requeue_after or 0) <= 7
    later = run(body, project=project_body(), children=[namespace_child()], now=T0 + timedelta(seconds=11))
    assert later.actions["image"]["attempt"] == 1 and later.fields["retries"]["image"] == {
        "attempt": 1,
        "failures": 1,
    }
    # the builders keep what exists (no deletion on an error path)
    kinds = {
        m["kind"]
        for m in troupe_build_resources(context(body, project=project_body(), children=[namespace_child()]))
        or []
    }
    assert {"Namespace", "NetworkPolicy", "ResourceQuota"} <= kinds


def test_a_deploy_error_keeps_the_last_good_release_and_names_its_reason() -> None:
    image = record(image_inputs(), "Succeeded", exists=True)
    probe = run(
        env_body(status={"actions": {"image": image}}), project=project_body(), children=[namespace_child()]
    )
    message = "HelmConnection: helm: Kubernetes cluster unreachable"
    failed = record(probe.actions["deploy"], "Failed", message=message)
    body = env_body(status={"actions": {"image": image, "deploy": failed}, "revision": 1})
    update = run(body, project=project_body(), children=[namespace_child()], now=T0 + timedelta(seconds=1))
    assert update.phase == "Failed"
    _, reason, text = cond(update, "DeploymentReady")
    assert (
        reason == "HelmConnection"
        and "nothing was removed" in text
        and iso(T0 + timedelta(seconds=10)) in text
    )
    assert "revision" not in update.fields  # the last good revision stays as recorded
    built = troupe_build_resources(context(body, project=project_body(), children=[namespace_child()])) or []
    assert {m["kind"] for m in built} >= {"Namespace", "NetworkPolicy", "ResourceQuota"}


def test_a_new_commit_checks_its_image_and_then_upgrades() -> None:
    body = env_body(spec={"source": {"commitSha": "def456"}}, status=ready_status())
    update = run(body, project=project_body(), children=[namespace_child()])
    assert update.phase == "Building" and update.actions["image"]["tag"] == "def456"


def test_suspend_asks_the_deploy_step_to_scale_down() -> None:
    status = ready_status()
    update = run(
        env_body(spec={"suspend": True}, status=status), project=project_body(), children=[namespace_child()]
    )
    assert update.actions["deploy"]["suspend"] is True and update.phase == "Deploying"


def test_ttl_warns_then_deletes() -> None:
    status = {**ready_status(), "observedGeneration": 1, "lastChangeAt": iso(T0)}
    body = env_body(spec={"ttl": "1h"}, status=status)
    early = run(body, project=project_body(), children=[namespace_child()], now=T0 + timedelta(minutes=10))
    assert early.fields["expiresAt"] == iso(T0 + timedelta(hours=1)) and not early.delete
    assert cond(early, "ExpiringSoon")[0] == "False" and early.requeue_after == 40 * 60
    warn = run(body, project=project_body(), children=[namespace_child()], now=T0 + timedelta(minutes=51))
    assert cond(warn, "ExpiringSoon")[:2] == ("True", "TTLExpiring") and not warn.delete
    end = run(body, project=project_body(), children=[namespace_child()], now=T0 + timedelta(hours=1))
    assert end.delete
    # a spec change restarts the clock
    changed = env_body(spec={"ttl": "1h"}, status=status, generation=2)
    assert run(
        changed, project=project_body(), children=[namespace_child()], now=T0 + timedelta(hours=2)
    ).fields["lastChangeAt"] == iso(T0 + timedelta(hours=2))


def test_deployment_environments_need_no_build() -> None:
    update = run(env_body(spec={"type": "deployment"}), project=project_body(), children=[namespace_child()])
    assert (
        cond(update, "BuildReady")[1] == "NotRequired"
        and "image" not in update.actions
        and "deploy" in update.actions
    )


def test_a_project_without_an_image_repository_is_refused() -> None:
    project = project_body(deployment={"type": "helm", "path": "charts/app"})
    update = run(env_body(), project=project, children=[namespace_child()])
    assert update.phase == "Failed" and "image.repository" in cond(update, "Ready")[2]


def test_manifest_projects_get_the_image_and_env_and_an_operator_ingress() -> None:
    project = project_body(
        deployment={
            "type": "manifest",
            "path": "deploy",
            "values": {"image": {"repository": "r.test/a"}},
            "service": {"name": "app"},
        }
    )
    status = {
        "actions": {
            "image": record(
                {**image_inputs(), "repository": "r.test/a", "insecure": False}, "Succeeded", exists=True
            )
        }
    }
    update = run(env_body(status=status), project=project, children=[namespace_child()])
    assert update.actions["deploy"]["image"] == "r.test/a:abc123" and "values" not in update.actions["deploy"]
    built = (
        troupe_build_resources(
            context(env_body(status=status), project=project, children=[namespace_child()])
        )
        or []
    )
    ingress = next(m for m in built if m["kind"] == "Ingress")
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"] == {
        "name": "app",
        "port": {"number": 80},
    }


def test_spec_model_parses_the_seed() -> None:
    spec = EnvironmentSpec.model_validate(
        {
            "projectRef": {"name": "my-project"},
            "type": "development",
            "source": {"commitSha": "a1b2c3d4...", "branch": "feature/login", "prNumber": 123},
            "config": {"envVars": [{"name": "DEBUG", "value": "true"}]},
        }
    )
    assert spec.source.pr_number == 123 and spec.config.env_vars[0].value == "true"
