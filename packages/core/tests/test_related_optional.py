"""Related kinds, optional child kinds and scope checks, through the reconcile path (in-memory API)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from troupe import ChildKind, KindSpec, ReconcileContext, SpecModel, StatusUpdate, hookimpl
from troupe.clock import FrozenClock
from troupe.engine.cache import ObjectKey
from troupe.engine.metrics import OperatorMetrics
from troupe.engine.reconcile import Reconciler
from troupe.engine.runtime import ScopeError, check_scope
from troupe.kinds import RelatedKind
from troupe.plugins import get_plugin_manager
from troupe.testing import Manifest, MemoryKube, reconcile


class TileSpec(SpecModel):
    palette: str = "plain"
    statue: bool = False


def palette_of(body: Manifest) -> list[tuple[str | None, str]]:
    return [(body["metadata"].get("namespace"), body.get("spec", {}).get("palette", "plain"))]


STATUE = ChildKind("art.example/v1", "Statue", "statues", optional=True, missing_hint="install the art CRDs")
TILE = KindSpec(
    operator="tiles",
    group="tiles.example",
    version="v1",
    kind="Tile",
    plural="tiles",
    spec_model=TileSpec,
    children=(ChildKind("v1", "ConfigMap", "configmaps"), STATUE),
    related=(RelatedKind("v1", "ConfigMap", "configmaps", references=palette_of),),
)


SITE = KindSpec(
    operator="sites",
    group="sites.example",
    version="v1",
    kind="Site",
    plural="sites",
    spec_model=TileSpec,
    scope="Cluster",
    children=(
        ChildKind("v1", "Namespace", "namespaces", namespaced=False),
        ChildKind("v1", "ConfigMap", "configmaps"),
    ),
)


class Tiles:
    @hookimpl
    def troupe_kinds(self) -> list[KindSpec]:
        return [TILE]

    @hookimpl
    def troupe_build_resources(self, ctx: ReconcileContext[TileSpec]) -> list[Manifest]:
        palette = ctx.related.named("ConfigMap", ctx.spec.palette)
        if palette is None:
            return []
        built = [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"{ctx.name}-tile", "namespace": ctx.namespace},
                "data": {"colour": palette["data"]["colour"]},
            }
        ]
        if ctx.spec.statue:
            built.append({"apiVersion": "art.example/v1", "kind": "Statue", "metadata": {"name": ctx.name}})
        return built

    @hookimpl
    def troupe_aggregate_status(self, ctx: ReconcileContext[TileSpec]) -> StatusUpdate:
        waiting = ctx.related.named("ConfigMap", ctx.spec.palette) is None
        return StatusUpdate(phase="Waiting" if waiting else "Ready")


@pytest.fixture
def reconciler(kube: MemoryKube, clock: FrozenClock) -> Reconciler:
    pm = get_plugin_manager(load_entrypoints=False, plugins=[Tiles()])
    metrics = {"tiles": OperatorMetrics("tiles", CollectorRegistry())}
    return Reconciler(pm=pm, kube=kube, clock=clock, metrics=metrics)  # type: ignore[arg-type]


def add_tile(kube: MemoryKube, reconciler: Reconciler, **spec: Any) -> ObjectKey:
    body = {
        "apiVersion": "tiles.example/v1",
        "kind": "Tile",
        "metadata": {
            "name": "t",
            "namespace": "ns",
            "uid": "tile-uid",
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": spec,
    }
    kube.objects["tiles", "ns", "t"] = body
    key = ObjectKey(TILE, "ns", "t")
    reconciler.put(key, copy.deepcopy(body))
    return key


def palette(name: str, colour: str, version: str = "7") -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": version},
        "data": {"colour": colour},
    }


def status(kube: MemoryKube) -> Manifest:
    return dict(kube.objects["tiles", "ns", "t"]["status"])


async def test_a_related_object_reaches_the_builders_and_its_changes_reach_the_dependents(
    kube: MemoryKube, reconciler: Reconciler
) -> None:
    key = add_tile(kube, reconciler, palette="sea")
    await reconcile(reconciler, key)
    assert status(kube)["phase"] == "Waiting"  # referenced, not there yet: absent from ctx.related
    assert reconciler.related.put(palette("sea", "blue")) == {key}
    assert reconciler.related.put(palette("sky", "white")) == set()  # nobody references it
    await reconcile(reconciler, key)
    assert kube.objects["configmaps", "ns", "t-tile"]["data"] == {"colour": "blue"}
    assert reconciler.related.put(palette("sea", "green", version="8")) == {key}
    await reconcile(reconciler, key)
    assert kube.objects["configmaps", "ns", "t-tile"]["data"] == {"colour": "green"}


async def test_a_changed_reference_moves_the_reverse_index(kube: MemoryKube, reconciler: Reconciler) -> None:
    key = add_tile(kube, reconciler, palette="sea")
    body = copy.deepcopy(kube.objects["tiles", "ns", "t"])
    body["spec"]["palette"] = "sky"
    body["metadata"]["generation"] = body["metadata"].get("generation", 0) + 1  # a spec edit
    body["metadata"]["resourceVersion"] = "2"
    reconciler.put(key, body)
    assert reconciler.related.put(palette("sea", "blue")) == set()
    assert reconciler.related.put(palette("sky", "white")) == {key}
    reconciler.forget(key)
    assert reconciler.related.put(palette("sky", "grey", version="9")) == set()


async def test_an_optional_kind_not_served_blocks_only_what_needs_it(
    kube: MemoryKube, reconciler: Reconciler
) -> None:
    reconciler.availability.set("statues.art.example", False)
    reconciler.related.put(palette("sea", "blue"))
    key = add_tile(kube, reconciler, palette="sea", statue=True)
    await reconcile(reconciler, key)
    missing = next(c for c in status(kube)["conditions"] if c["type"] == "MissingAPI")
    assert missing["status"] == "True"
    assert "art.example/v1 Statue is not served: install the art CRDs" in missing["message"]
    assert ("configmaps", "ns", "t-tile") in kube.objects  # the rest of the object goes on
    assert not any("Statue" in w for w in kube.writes)

    reconciler.availability.set("statues.art.example", True)  # the CRD was installed
    await reconcile(reconciler, key)
    assert any("create Statue/t" in w for w in kube.writes)
    after = {c["type"]: c["status"] for c in status(kube)["conditions"]}
    assert after["MissingAPI"] == "False" and after.get("Ready") != "False"


def test_a_cluster_scoped_kind_with_namespaced_children_refuses_named_namespaces() -> None:
    check_scope([SITE], [])  # all namespaces: fine
    with pytest.raises(ScopeError, match=r"Site is cluster-scoped and creates ConfigMap.*--all-namespaces"):
        check_scope([SITE], ["team-a"])


async def test_nothing_goes_into_a_namespace_held_by_someone_else(
    kube: MemoryKube, clock: FrozenClock
) -> None:
    class Sites:
        @hookimpl
        def troupe_kinds(self) -> list[KindSpec]:
            return [SITE]

        @hookimpl
        def troupe_build_resources(self, ctx: ReconcileContext[TileSpec]) -> list[Manifest]:
            namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "site-s"}}
            config = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "site-s"},
            }
            return [namespace, config]

    users = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "site-s", "uid": "users-ns"}}
    kube.objects["namespaces", None, "site-s"] = users
    body = {
        "apiVersion": "sites.example/v1",
        "kind": "Site",
        "metadata": {"name": "s", "uid": "site-uid", "generation": 1, "resourceVersion": "1"},
        "spec": {},
    }
    kube.objects["sites", None, "s"] = body
    pm = get_plugin_manager(load_entrypoints=False, plugins=[Sites()])
    metrics = {"sites": OperatorMetrics("sites", CollectorRegistry())}
    reconciler = Reconciler(pm=pm, kube=kube, clock=clock, metrics=metrics)  # type: ignore[arg-type]
    key = ObjectKey(SITE, None, "s")
    reconciler.put(key, copy.deepcopy(body))
    await reconcile(reconciler, key)
    assert not any(w.startswith("apply") for w in kube.writes), kube.writes
    conditions = {c["type"]: c for c in kube.objects["sites", None, "s"]["status"]["conditions"]}
    assert (
        conditions["NameConflict"]["status"] == "True"
        and "Namespace site-s" in conditions["NameConflict"]["message"]
    )
