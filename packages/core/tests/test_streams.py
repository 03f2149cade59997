"""Which informers ``register`` sets up, and how the CRD stream starts and stops an optional kind's."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import kopf
import pytest
from prometheus_client import CollectorRegistry

from troupe import hookimpl
from troupe.context import ChildKey
from troupe.engine.cache import ObjectKey
from troupe.engine.informer import Informer
from troupe.engine.metrics import OperatorMetrics
from troupe.engine.reconcile import Reconciler
from troupe.engine.runtime import HandlerRegistry, RunSettings, register
from troupe.engine.workqueue import WorkQueue
from troupe.kinds import ChildKind, KindSpec
from troupe.plugins import get_plugin_manager
from troupe.testing import MemoryKube

from .test_related_optional import STATUE, TILE, Tiles

#: A Tile whose Deployment's pods it watches (never builds).
WATCHING_PODS = dataclasses.replace(
    TILE, children=(*TILE.children, ChildKind("v1", "Pod", "pods", observe_only=True))
)


class TilesWatchingPods(Tiles):
    @hookimpl
    def troupe_kinds(self) -> list[KindSpec]:
        return [WATCHING_PODS]


def registry_for(
    kube: MemoryKube, clock: Any, namespaces: list[str], plugin: Any = None, kind: KindSpec = TILE
) -> HandlerRegistry:
    pm = get_plugin_manager(load_entrypoints=False, plugins=[plugin or Tiles()])
    metrics = {"tiles": OperatorMetrics("tiles", CollectorRegistry())}
    reconciler = Reconciler(pm=pm, kube=kube, clock=clock, metrics=metrics)  # type: ignore[arg-type]
    runs: list[Any] = []

    async def worker(key: Any) -> None:
        runs.append(key)

    registry = HandlerRegistry(
        kopf=kopf.OperatorRegistry(),
        reconciler=reconciler,
        queue=WorkQueue(worker),
        kinds=[kind],
        settings=RunSettings(operators=["tiles"], namespaces=namespaces),
        metrics=metrics,
    )
    register(registry, pm)
    return registry


def streams(registry: HandlerRegistry) -> dict[str, Informer]:
    found = [i for group in registry.streams.values() for i in group]
    assert len({i.stream for i in found}) == len(found), "two streams of one name: the gate would mix them"
    return {i.stream: i for i in found}


def test_one_stream_per_kind_and_watched_namespace(kube: MemoryKube, clock: Any) -> None:
    named = streams(registry_for(kube, clock, ["a", "b"]))
    assert set(named) == {"configmaps@a", "configmaps@b", "statues@a", "statues@b", "tiles@a", "tiles@b"}
    everywhere = registry_for(kube, clock, [])
    assert set(streams(everywhere)) == {"configmaps@*", "statues@*", "tiles@*"}
    # read whole: the name index learns every name taken, the child index keeps the operators' own
    assert streams(everywhere)["statues@*"].label_selector is None
    # ConfigMaps are children and related objects (read whole): one stream, filtered here for the children
    assert streams(everywhere)["configmaps@*"].label_selector is None
    assert everywhere.crd_stream is not None and everywhere.crd_stream.stream == "customresourcedefinitions@*"


def test_only_the_operators_own_objects_of_a_kind_only_observed_are_listed(
    kube: MemoryKube, clock: Any
) -> None:
    # no name of a pod is ever written: the server sends only the operators' own, not the cluster's pods
    named = streams(registry_for(kube, clock, [], TilesWatchingPods(), WATCHING_PODS))
    assert named["pods@*"].label_selector == "app.kubernetes.io/managed-by in (troupe-tiles)"
    assert named["configmaps@*"].label_selector is None and named["statues@*"].label_selector is None


async def test_a_kind_both_child_and_related_files_each_object_where_it_belongs(
    kube: MemoryKube, clock: Any
) -> None:
    registry = registry_for(kube, clock, [])
    stream = streams(registry)["configmaps@*"]
    key = ObjectKey(TILE, "ns", "t")
    registry.reconciler.put(key, {"metadata": {"name": "t", "namespace": "ns", "resourceVersion": "1"}})
    ours = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "t-tile",
            "namespace": "ns",
            "resourceVersion": "5",
            "labels": {"app.kubernetes.io/managed-by": "troupe-tiles"},
            "annotations": {"troupe.dev/owner": key.owner},
        },
    }
    theirs = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain", "namespace": "ns"}}
    stream.handler("ADDED", ours)
    stream.handler("ADDED", theirs)
    assert list(registry.reconciler.children.children(key.owner, "")) == [
        ChildKey("", "ConfigMap", "ns", "t-tile")
    ]
    assert registry.reconciler.related.view(key).get(ChildKey("", "ConfigMap", "ns", "plain")) is not None
    # a name held by anyone is known taken, so a child of that name is looked at before any write
    assert registry.reconciler.names.taken(ChildKey("", "ConfigMap", "ns", "plain"))
    # the managed-by label taken off: no longer a child
    stream.handler(
        "MODIFIED", {**ours, "metadata": {**ours["metadata"], "labels": {}, "resourceVersion": "6"}}
    )
    assert not registry.reconciler.children.children(key.owner, "")
    registry.queue.close()


async def test_an_optional_kinds_streams_follow_its_crd(
    kube: MemoryKube, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = registry_for(kube, clock, [])
    started: list[str] = []
    stopped: list[tuple[str, bool]] = []

    def start(self: Informer) -> None:
        started.append(self.stream)

    async def stop(self: Informer, *, forget: bool = False) -> None:
        stopped.append((self.stream, forget))

    monkeypatch.setattr(Informer, "start", start)
    monkeypatch.setattr(Informer, "stop", stop)
    registry.reconciler.availability.set("statues.art.example", False)
    registry.start()
    assert "statues@*" not in started and "configmaps@*" in started
    assert "customresourcedefinitions@*" in started

    key = ObjectKey(TILE, "ns", "t")
    registry.reconciler.objects.put(
        key, {"metadata": {"name": "t", "namespace": "ns", "resourceVersion": "1"}}
    )
    crd = {
        "metadata": {"name": "statues.art.example"},
        "spec": {"versions": [{"name": "v1", "served": True}]},
        "status": {"conditions": [{"type": "Established", "status": "True"}]},
    }
    assert registry.crd_stream is not None
    registry.crd_stream.handler("ADDED", crd)
    assert started[-1] == "statues@*" and registry.reconciler.availability.served(STATUE)
    registry.crd_stream.handler("DELETED", crd)
    await asyncio.sleep(0)
    assert stopped == [("statues@*", True)] and not registry.reconciler.availability.served(STATUE)
    registry.queue.close()
