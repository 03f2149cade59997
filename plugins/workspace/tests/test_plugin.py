"""The hooks as the core calls them: a ReconcileContext in, manifests and a status out; admission."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from troupe import AdmissionState, ChildKey, Children, ReconcileContext
from troupe_workspace import plugin
from troupe_workspace.config import Settings
from troupe_workspace.models import WorkspaceSpec

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def ctx(
    spec: dict[str, Any], status: dict[str, Any] | None = None, **kw: Any
) -> ReconcileContext[WorkspaceSpec]:
    body = {
        "apiVersion": "pelotech.ot/v1alpha1",
        "kind": "Workspace",
        "metadata": {"name": "w", "uid": "u1"},
        "spec": spec,
        "status": status or {},
    }
    return ReconcileContext(plugin.WORKSPACE, body, WorkspaceSpec.model_validate(spec), NOW, **kw)


def test_hooks_build_and_report_through_the_context(monkeypatch: Any) -> None:
    monkeypatch.setattr(plugin, "_settings", Settings(policy_namespace="ops", disk_namespace="disks"))
    spec = {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ws-w"}}
    built = plugin.troupe_build_resources(ctx(spec, children=Children({ChildKey.of(namespace): namespace})))
    assert [m["kind"] for m in built] == ["Namespace", "Deployment", "Service"]
    queued = plugin.troupe_build_resources(
        ctx(spec, admission=AdmissionState(admitted=False, position=1, limit=1))
    )
    assert queued == []
    update = plugin.troupe_aggregate_status(ctx(spec))
    assert update.phase == "Provisioning" and update.fields["containers"] == "0/1"


def test_admission_holds_provisioning_and_queues_new_and_queued(monkeypatch: Any) -> None:
    admission = plugin.WORKSPACE.admission
    assert admission is not None
    queued = {"conditions": [{"type": "Queued", "status": "True"}], "phase": "Provisioning"}
    admitted = {"conditions": [{"type": "Queued", "status": "False"}], "phase": "Provisioning"}
    assert admission.waiting({"status": {}}) and admission.waiting({"status": queued})
    assert admission.holding({"status": admitted}) and not admission.holding({"status": queued})
    for done in ("Ready", "Failed"):
        assert not admission.holding({"status": {"phase": done}})
        assert not admission.waiting({"status": {"phase": done}})
    monkeypatch.setattr(plugin, "_settings", Settings(policy_namespace="ops", default_concurrency=3))
    policy = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "sync-operator-policy", "namespace": "ops"},
        "data": {"workspaceConcurrency": "1"},
    }
    assert admission.limit(Children({ChildKey.of(policy): policy})) == 1
    assert admission.limit(Children()) == 3
    assert plugin.policy_references({}) == [("ops", "sync-operator-policy")]


def test_settings_from_the_chart_environment() -> None:
    from datetime import timedelta

    from troupe_workspace.config import from_env

    env = {
        "TROUPE_WORKSPACE_POLICY": "ops/policy",
        "TROUPE_WORKSPACE_DISK_NAMESPACE": "disks",
        "TROUPE_WORKSPACE_DEFAULT_CONCURRENCY": "4",
        "TROUPE_WORKSPACE_FAIL_AFTER": "2m",
    }
    assert from_env(env) == Settings("ops", "policy", "disks", 4, timedelta(minutes=2))
    defaults = from_env({"TROUPE_WORKSPACE_DEFAULT_CONCURRENCY": "zero"})
    assert (defaults.policy_namespace, defaults.policy_name, defaults.default_concurrency) == (
        "default",
        "sync-operator-policy",
        2,
    )
