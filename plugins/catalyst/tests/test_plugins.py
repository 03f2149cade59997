"""One plugin per kind: what the installed entry points declare, where each kind's hooks go, the count."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import kopf
import pytest

from troupe import KindSpec, Manifest, OperatorHandle
from troupe.plugins import collect_kinds, get_plugin_manager, kind_hooks
from troupe_catalyst import environment, project
from troupe_catalyst.environment import ENVIRONMENT
from troupe_catalyst.project import PROJECT, count_environments
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


@dataclass
class FakeKube:
    patched: list[tuple[str | None, str, dict[str, Any]]] = field(default_factory=list)

    async def patch_status(
        self, api_version: str, plural: str, namespace: str | None, name: str, status: dict[str, Any]
    ) -> Manifest:
        assert (api_version, plural) == (f"{GROUP}/v1alpha1", "projects")
        self.patched.append((namespace, name, status))
        return {}


def handle(objects: dict[str, list[Manifest]], kinds: tuple[KindSpec, ...] = (PROJECT, ENVIRONMENT)) -> Any:
    return OperatorHandle(
        kopf=kopf.OperatorRegistry(),
        kube=FakeKube(),  # type: ignore[arg-type]
        operators=("catalyst",),
        kinds=kinds,
        _enqueue=lambda *_: None,
        _objects=lambda kind: objects[kind.kind],
        _metrics={},
    )


def body(
    name: str, ns: str = "team", project_name: str | None = None, environments: int | None = None
) -> Manifest:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"projectRef": {"name": project_name}} if project_name else {},
        "status": {} if environments is None else {"environments": environments},
    }


async def test_the_count_writes_only_what_differs_and_sees_the_event_before_the_cache() -> None:
    h = handle(
        {
            "Project": [
                body("app", environments=1),
                body("web", environments=1),
                body("idle", environments=0),
            ],
            "Environment": [body("a", project_name="app"), body("b", project_name="web")],
        }
    )
    # the event's body counts though the cache does not hold it yet: "c" added (app 1 -> 2), "b" deleted
    # (web 1 -> 0); counts already right are not written (web at first, idle, app at the second event)
    await count_environments(h, body("c", project_name="app"), "ADDED")
    await count_environments(h, body("b", project_name="web"), "DELETED")
    assert h.kube.patched == [("team", "app", {"environments": 2}), ("team", "web", {"environments": 0})]


def test_the_count_is_registered_only_when_both_kinds_run() -> None:
    objects: dict[str, list[Manifest]] = {"Project": [], "Environment": []}
    alone, both = handle(objects, kinds=(PROJECT,)), handle(objects)
    project.troupe_register_handlers(alone)
    project.troupe_register_handlers(both)
    assert not alone.kopf._watching.get_all_handlers()
    assert {h.id for h in both.kopf._watching.get_all_handlers()} == {
        "catalyst-project-counts",
        "catalyst-projects",
    }
