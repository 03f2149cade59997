"""The reconcile path against an in-memory API (a pure unit: the real API server is in e2e/)."""

from __future__ import annotations

import copy
from typing import Any

import kopf
import pytest
from prometheus_client import CollectorRegistry

from troupe.client import NotFound
from troupe.clock import FrozenClock
from troupe.health import WatchActivity
from troupe.kinds import ChildKind
from troupe.metrics import OperatorMetrics
from troupe.plugins import get_plugin_manager
from troupe.reconcile import ObjectKey, Reconciler
from troupe_example import cost_center, greeting

Manifest = dict[str, Any]


class MemoryKube:
    """Just enough of troupe.client.Kube: stores objects, counts writes, bumps resourceVersion."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str | None, str], Manifest] = {}
        self.writes: list[str] = []
        self.version = 100

    def _bump(self, obj: Manifest) -> Manifest:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(obj)

    async def get(self, api_version: str, plural: str, namespace: str | None, name: str) -> Manifest | None:
        obj = self.objects.get((plural, namespace, name))
        return copy.deepcopy(obj) if obj else None

    async def apply(self, manifest: Manifest, plural: str, namespace: str | None) -> Manifest:
        self.writes.append(f"apply {manifest['kind']}/{manifest['metadata']['name']}")
        stored = copy.deepcopy(manifest)
        stored["metadata"]["uid"] = "child-uid"
        self.objects[plural, namespace, manifest["metadata"]["name"]] = stored
        return self._bump(stored)

    async def patch_status(
        self, api_version: str, plural: str, namespace: str | None, name: str, patch: Manifest
    ) -> Manifest:
        self.writes.append(f"status {name}")
        if (plural, namespace, name) not in self.objects:
            raise NotFound(name)
        obj = self.objects[plural, namespace, name]
        status = obj.setdefault("status", {})
        for key, value in patch.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = value
        return self._bump(obj)

    async def delete(self, api_version: str, plural: str, namespace: str | None, name: str, **_: Any) -> bool:
        self.writes.append(f"delete {plural}/{name}")
        return self.objects.pop((plural, namespace, name), None) is not None

    async def request(self, method: str, path: str, **_: Any) -> Manifest:
        self.writes.append(f"{method} {path}")
        return {}


@pytest.fixture
def kube() -> MemoryKube:
    return MemoryKube()


@pytest.fixture
def reconciler(kube: MemoryKube, clock: FrozenClock) -> Reconciler:
    pm = get_plugin_manager(load_entrypoints=False, plugins=[greeting, cost_center])
    metrics = {"example": OperatorMetrics("example", CollectorRegistry())}
    return Reconciler(pm=pm, kube=kube, clock=clock, metrics=metrics)  # type: ignore[arg-type]


def add_greeting(kube: MemoryKube, reconciler: Reconciler, spec: Manifest, **annotations: str) -> ObjectKey:
    body = {
        "apiVersion": "example.troupe.dev/v1alpha1",
        "kind": "Greeting",
        "metadata": {
            "name": "hi",
            "namespace": "ns",
            "uid": "owner-uid",
            "generation": 1,
            "resourceVersion": "1",
            "annotations": annotations,
        },
        "spec": spec,
    }
    kube.objects["greetings", "ns", "hi"] = body
    key = ObjectKey(greeting.GREETING, "ns", "hi")
    reconciler.objects.put(key, copy.deepcopy(body))
    return key


async def test_first_reconcile_applies_then_steady_state_writes_nothing(
    kube: MemoryKube, reconciler: Reconciler
) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"}, **{cost_center.ANNOTATION: "cc-7"})
    await reconciler.reconcile(key)
    assert kube.writes[0] == "apply ConfigMap/hi-greeting"
    assert "status hi" in kube.writes
    cm = kube.objects["configmaps", "ns", "hi-greeting"]
    assert cm["data"] == {"greeting": "Hello, Ada!"}
    assert cm["metadata"]["labels"][cost_center.LABEL] == "cc-7"  # the third-party hook ran
    assert cm["metadata"]["annotations"]["example.troupe.dev/generation"] == "1"
    assert kube.objects["greetings", "ns", "hi"]["status"]["phase"] == "Ready"
    assert greeting.TRANSITIONS[-1] == ("hi", None, "Ready")

    kube.writes.clear()
    for _ in range(3):
        await reconciler.reconcile(key)
    assert kube.writes == []  # zero-write steady state, even with an empty watch cache for children


async def test_spec_edit_rolls_out_and_deleted_child_comes_back(
    kube: MemoryKube, reconciler: Reconciler
) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    await reconciler.reconcile(key)
    body = copy.deepcopy(kube.objects["greetings", "ns", "hi"])
    body["spec"]["message"] = "Welcome"
    body["metadata"]["generation"] = 2
    body["metadata"]["resourceVersion"] = "999"
    reconciler.objects.put(key, body)
    await reconciler.reconcile(key)
    assert kube.objects["configmaps", "ns", "hi-greeting"]["data"]["greeting"] == "Welcome, Ada!"

    cm = kube.objects.pop(("configmaps", "ns", "hi-greeting"))
    reconciler.children.remove(cm)
    await reconciler.reconcile(key)
    assert ("configmaps", "ns", "hi-greeting") in kube.objects


async def test_child_no_longer_desired_is_pruned(kube: MemoryKube, reconciler: Reconciler) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    await reconciler.reconcile(key)
    body = copy.deepcopy(kube.objects["greetings", "ns", "hi"])
    body["spec"]["delivery"] = {"channel": "log"}
    body["metadata"]["resourceVersion"] = "999"
    reconciler.objects.put(key, body)
    await reconciler.reconcile(key)
    assert ("configmaps", "ns", "hi-greeting") not in kube.objects
    assert "configMap" not in kube.objects["greetings", "ns", "hi"]["status"]


async def test_invalid_spec_fails_with_a_message_and_touches_nothing(
    kube: MemoryKube, reconciler: Reconciler
) -> None:
    key = add_greeting(kube, reconciler, {"name": "nobody"})
    await reconciler.reconcile(key)
    status = kube.objects["greetings", "ns", "hi"]["status"]
    assert status["phase"] == "Failed"
    assert status["conditions"][0]["reason"] == "InvalidSpec"
    assert "deny list" in status["conditions"][0]["message"]
    assert not any(w.startswith("apply") for w in kube.writes)
    assert any("events" in w for w in kube.writes)  # a Warning event says so


async def test_schema_violation_names_the_field(kube: MemoryKube, reconciler: Reconciler) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada", "delivery": {"repeat": 0}})
    await reconciler.reconcile(key)
    message = kube.objects["greetings", "ns", "hi"]["status"]["conditions"][0]["message"]
    assert message.startswith("spec.delivery.repeat:")


async def test_deleting_objects_are_not_reconciled(kube: MemoryKube, reconciler: Reconciler) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    body = copy.deepcopy(kube.objects["greetings", "ns", "hi"])
    body["metadata"]["deletionTimestamp"] = "2026-11-24T09:00:00Z"
    reconciler.objects.put(key, body)
    assert await reconciler.reconcile(key) is None
    assert kube.writes == []


async def test_finalize_tears_down_what_the_builders_leave_out(
    kube: MemoryKube, reconciler: Reconciler
) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    await reconciler.reconcile(key)
    assert ("configmaps", "ns", "hi-greeting") in kube.objects
    for obj in copy.deepcopy(list(kube.objects.values())):
        if obj["kind"] == "ConfigMap":
            reconciler.children.put(obj)
    body = copy.deepcopy(kube.objects["greetings", "ns", "hi"])
    body["metadata"]["deletionTimestamp"] = "2026-11-24T09:00:00Z"
    greeting.FINALIZED.clear()
    await reconciler.finalize(key, body)
    assert "delete configmaps/hi-greeting" in kube.writes
    assert greeting.FINALIZED == ["hi"]


async def test_finalize_of_an_unparseable_spec_deletes_nothing(
    kube: MemoryKube, reconciler: Reconciler
) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    await reconciler.reconcile(key)
    for obj in copy.deepcopy(list(kube.objects.values())):
        if obj["kind"] == "ConfigMap":
            reconciler.children.put(obj)
    body = copy.deepcopy(kube.objects["greetings", "ns", "hi"])
    body["spec"] = {"name": "Ada", "delivery": {"repeat": 0}}
    body["metadata"]["deletionTimestamp"] = "2026-11-24T09:00:00Z"
    writes = len(kube.writes)
    await reconciler.finalize(key, body)
    assert not any(w.startswith("delete") for w in kube.writes[writes:])


async def test_create_only_children_are_never_updated(kube: MemoryKube, reconciler: Reconciler) -> None:
    child = ChildKind("v1", "ConfigMap", "configmaps")
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "cred",
            "namespace": "ns",
            "labels": {"app.kubernetes.io/managed-by": "troupe-example"},
            "annotations": {"troupe.dev/owner": "o", "troupe.dev/create-only": "true"},
        },
        "data": {"password": "first"},
    }
    await reconciler.ensure(child, copy.deepcopy(manifest))
    manifest["data"]["password"] = "second"
    observed, wrote = await reconciler.ensure(child, copy.deepcopy(manifest))
    assert not wrote and observed["data"]["password"] == "first"
    assert kube.objects["configmaps", "ns", "cred"]["data"]["password"] == "first"


async def test_no_reconcile_before_the_children_are_listed(kube: MemoryKube, reconciler: Reconciler) -> None:
    reconciler.activity = WatchActivity(stale_after=600)
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    assert await reconciler.reconcile(key) == 0.5
    assert kube.writes == []  # nothing built from a child index that may still be empty
    reconciler.activity.seen("configmaps@ns", listed=True)
    await reconciler.reconcile(key)
    assert "apply ConfigMap/hi-greeting" in kube.writes


async def test_finalize_waits_for_the_children_listing(kube: MemoryKube, reconciler: Reconciler) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    reconciler.activity = WatchActivity(stale_after=600)
    body = copy.deepcopy(kube.objects["greetings", "ns", "hi"])
    body["metadata"]["deletionTimestamp"] = "2026-11-24T09:00:00Z"
    greeting.FINALIZED.clear()
    with pytest.raises(kopf.TemporaryError):
        await reconciler.finalize(key, body)
    assert greeting.FINALIZED == [] and kube.writes == []


async def test_an_object_deleted_during_its_reconcile_is_not_an_error(
    kube: MemoryKube, reconciler: Reconciler
) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    del kube.objects["greetings", "ns", "hi"]  # gone from the server, still in the watch cache
    assert await reconciler.reconcile(key) is not None
    assert kube.writes[-1] == "status hi"
