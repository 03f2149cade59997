"""Deletion: what the finalizer waits for, and what the builders keep meanwhile; the metrics of steps."""

from __future__ import annotations

from typing import Any

import kopf
import pytest
from prometheus_client import CollectorRegistry

from troupe import ChildKey, Children, OperatorMetrics, ReconcileContext
from troupe_catalyst import environment
from troupe_catalyst.config import Settings
from troupe_catalyst.metrics import CatalystMetrics
from troupe_catalyst.models import EnvironmentSpec
from troupe_catalyst.teardown import namespace_pending, needs_uninstall

NS = "team-app-pr-1"


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(environment, "_settings", Settings())


def body(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "pr-1",
            "namespace": "team",
            "labels": {"catalyst.dev/team": "team"},
            "deletionTimestamp": "2026-11-26T10:00:00Z",
            "finalizers": ["catalyst.troupe.dev/finalizer"],
        },
        "spec": {"projectRef": {"name": "app"}, "source": {"commitSha": "abc"}},
        "status": status,
    }


def ctx(b: dict[str, Any], namespace_exists: bool = True) -> ReconcileContext[EnvironmentSpec]:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    kids = Children({ChildKey.of(ns): ns} if namespace_exists else {})
    return ReconcileContext(
        kind=environment.ENVIRONMENT,
        body=b,
        spec=EnvironmentSpec.model_validate(b["spec"]),
        now=None,
        children=kids,  # type: ignore[arg-type]
    )


HELM_RAN = {
    "namespace": NS,
    "release": "pr-1",
    "deployType": "helm",
    "actions": {"deploy": {"phase": "Succeeded"}},
}


def test_a_helm_release_is_uninstalled_before_the_namespace_goes() -> None:
    b = body(**HELM_RAN)
    assert needs_uninstall(b) and namespace_pending(b)
    assert [m["kind"] for m in environment.troupe_build_resources(ctx(b)) or []] == ["Namespace"]
    with pytest.raises(kopf.TemporaryError, match="uninstalling release pr-1"):
        environment.troupe_finalize(ctx(b))


def test_then_the_namespace_is_deleted_and_waited_for() -> None:
    b = body(**HELM_RAN, uninstalled=True)
    assert not needs_uninstall(b)
    assert environment.troupe_build_resources(ctx(b)) == []  # the core deletes what is left out
    with pytest.raises(kopf.TemporaryError, match=f"namespace {NS}"):
        environment.troupe_finalize(ctx(b, namespace_exists=False))  # deleted is not gone yet
    environment.troupe_finalize(
        ctx(body(**HELM_RAN, uninstalled=True, namespaceDeleted=True), namespace_exists=False)
    )


def test_manifest_deploys_and_environments_that_never_deployed_uninstall_nothing() -> None:
    assert not needs_uninstall(body(**{**HELM_RAN, "deployType": "manifest"}))
    assert not needs_uninstall(body(namespace=NS, deployType="helm"))
    assert environment.troupe_build_resources(ctx(body(namespace=NS))) == []


def test_a_namespace_that_was_never_ours_is_not_waited_for() -> None:
    # NameConflict: status.namespace is only set once the operator's own namespace is observed
    b = body()
    assert not namespace_pending(b) and not needs_uninstall(b)
    assert environment.troupe_build_resources(ctx(b, namespace_exists=False)) == []
    environment.troupe_finalize(ctx(b, namespace_exists=False))


def test_metrics_of_deploys_failures_and_builds() -> None:
    registry = CollectorRegistry()
    metrics = CatalystMetrics(OperatorMetrics("catalyst", registry))
    metrics.deployed(7.0, "HelmConnection: helm: cluster unreachable")
    metrics.deployed(3.0, None)
    running = {"build": {"phase": "Running", "startedAt": "2026-11-26T09:58:00Z"}}
    done = {
        "build": {
            "phase": "Succeeded",
            "startedAt": "2026-11-26T09:58:00Z",
            "finishedAt": "2026-11-26T09:59:00Z",
        },
    }
    metrics.observe({}, running, done)
    metrics.observe({}, done, done)  # no change: nothing counted twice
    value = registry.get_sample_value
    assert value("troupe_catalyst_helm_failures_total", {"reason": "HelmConnection"}) == 1
    assert value("troupe_catalyst_deploy_duration_seconds_sum", {"result": "failure"}) == 7
    assert value("troupe_catalyst_deploy_duration_seconds_sum", {"result": "success"}) == 3
    assert value("troupe_catalyst_build_duration_seconds_sum", {"result": "succeeded"}) == 60
