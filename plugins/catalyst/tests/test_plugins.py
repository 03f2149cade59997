"""One plugin per kind: what the installed entry points declare, where each kind's hooks go, the count."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf
import pytest
from prometheus_client import CollectorRegistry

from troupe import ChildKey, Children, KindSpec, OperatorHandle, OperatorMetrics, ReconcileContext
from troupe.plugins import collect_kinds, get_plugin_manager, kind_hooks
from troupe_catalyst import environment, project
from troupe_catalyst.environment import ENVIRONMENT
from troupe_catalyst.project import PROJECT
from troupe_catalyst.references import GROUP


def test_each_plugin_declares_one_kind_of_the_catalyst_operator() -> None:
    pm = get_plugin_manager()
    assert pm.get_plugin("catalyst-project") is project
    assert pm.get_plugin("catalyst-environment") is environment
    assert {k.kind for k in collect_kinds(pm, ["catalyst"])} == {"Project", "Environment"}


def test_a_kinds_hooks_reach_only_the_plugin_that_declared_it() -> None:
    hooks = kind_hooks(get_plugin_manager())
    project_plugins = {i.plugin for i in hooks[GROUP, "Project"].troupe_aggregate_status.get_hookimpls()}
    env_plugins = {i.plugin for i in hooks[GROUP, "Environment"].troupe_aggregate_status.get_hookimpls()}
    assert environment not in project_plugins and environment in env_plugins


def test_disabling_one_plugin_leaves_the_other_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TROUPE_DISABLE_PLUGINS", "catalyst-project")
    assert [k.kind for k in collect_kinds(get_plugin_manager(), ["catalyst"])] == ["Environment"]


def handle(kinds: tuple[KindSpec, ...], told: list[tuple[str, Any]]) -> OperatorHandle:
    return OperatorHandle(
        kopf=kopf.OperatorRegistry(),
        kube=None,  # type: ignore[arg-type]
        operators=("catalyst",),
        kinds=kinds,
        _enqueue=lambda *_: None,
        _objects=lambda kind: [],
        _metrics={"catalyst": OperatorMetrics("catalyst", CollectorRegistry())},
        _on_event=lambda kind, callback: told.append((kind.kind, callback)),
        _on_listed=lambda kind, callback: told.append((f"{kind.kind} listed", callback)),
    )


def project_ctx(*environments: str) -> ReconcileContext[Any]:
    referrers = {
        ChildKey(GROUP, "Environment", "team", name): {"metadata": {"name": name}} for name in environments
    }
    return ReconcileContext(
        kind=PROJECT,
        body={"metadata": {"name": "app", "namespace": "team"}},
        spec=PROJECT.spec_model.model_construct(),
        now=datetime(2026, 1, 1, tzinfo=UTC),
        referrers=Children(referrers),
    )


def test_a_project_counts_the_environments_naming_it_when_both_kinds_run() -> None:
    told: list[tuple[str, Any]] = []
    project.troupe_register_handlers(handle((PROJECT,), told))
    assert project.troupe_aggregate_status(project_ctx("a")).fields == {}, "no Environments here: no count"
    project.troupe_register_handlers(handle((PROJECT, ENVIRONMENT), told))
    assert project.troupe_aggregate_status(project_ctx()).fields == {"environments": 0}
    update = project.troupe_aggregate_status(project_ctx("a", "b"))
    assert update.phase == "Ready" and update.fields == {"environments": 2}
    assert not told, "a Project watches nothing of its own"


def test_environments_are_followed_on_the_cores_stream_not_a_kopf_handler() -> None:
    told: list[tuple[str, Any]] = []
    h = handle((PROJECT, ENVIRONMENT), told)
    environment.troupe_register_handlers(h)
    assert [kind for kind, _ in told] == ["Environment"]
    assert not h.kopf._watching.get_all_handlers()
