"""The reconcile path against an in-memory API (a pure unit: the real API server is in e2e/)."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import kopf
import pytest
from prometheus_client import CollectorRegistry

from troupe import ReconcileContext, StatusUpdate, hookimpl
from troupe.clock import FrozenClock
from troupe.context import ChildKey
from troupe.engine import reporting
from troupe.engine.cache import ObjectKey
from troupe.engine.children import ApplyReport
from troupe.engine.client import ApiException
from troupe.engine.health import WatchActivity
from troupe.engine.metrics import OperatorMetrics
from troupe.engine.names import NameIndex
from troupe.engine.reconcile import LISTING_RECHECK, Reconciler
from troupe.engine.workqueue import WorkQueue
from troupe.kinds import Action, ChildKind
from troupe.plugins import get_plugin_manager
from troupe.testing import Manifest, MemoryKube, reconcile, written
from troupe_example import cost_center, greeting


def reconciler_with(kube: MemoryKube, clock: FrozenClock, *plugins: Any) -> Reconciler:
    """A reconciler of the example operator's hooks from ``plugins``, on the in-memory API."""
    pm = get_plugin_manager(load_entrypoints=False, plugins=list(plugins))
    metrics = {"example": OperatorMetrics("example", CollectorRegistry())}
    return Reconciler(pm=pm, kube=kube, clock=clock, metrics=metrics)  # type: ignore[arg-type]


@pytest.fixture
def reconciler(kube: MemoryKube, clock: FrozenClock) -> Reconciler:
    return reconciler_with(kube, clock, greeting, cost_center)


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
    await reconcile(reconciler, key)
    assert kube.writes[:2] == ["json-patch greetings/hi", "create ConfigMap/hi-greeting"]  # finalizer first
    assert kube.objects["greetings", "ns", "hi"]["metadata"]["finalizers"] == ["troupe.dev/finalizer"]
    assert "status hi" in kube.writes
    cm = kube.objects["configmaps", "ns", "hi-greeting"]
    assert cm["data"] == {"greeting": "Hello, Ada!"}
    assert cm["metadata"]["labels"][cost_center.LABEL] == "cc-7"  # the third-party hook ran
    assert cm["metadata"]["annotations"]["example.troupe.dev/generation"] == "1"
    assert kube.objects["greetings", "ns", "hi"]["status"]["phase"] == "Ready"
    assert greeting.TRANSITIONS[-1] == ("hi", None, "Ready")

    kube.writes.clear()
    for _ in range(3):
        await reconcile(reconciler, key)
    assert kube.writes == []  # zero-write steady state, even with an empty watch cache for children


class BuildsOnWhatItSees:
    """An extension that builds a second child once the greeting's ConfigMap is observed (as a workspace
    builds its objects once the Namespace it created is there)."""

    @hookimpl
    def troupe_build_resources(self, ctx: ReconcileContext[Any]) -> list[Manifest] | None:
        if ctx.deleting or ctx.children.named("ConfigMap", "hi-greeting") is None:
            return None
        return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hi-after"}, "data": {}}]


async def test_a_reconcile_that_created_a_child_looks_again_at_once_when_builders_build_on_it(
    kube: MemoryKube, clock: FrozenClock
) -> None:
    """The echo of a created child starts no reconcile, and builders may build on what they observe."""
    reconciler = reconciler_with(kube, clock, greeting, cost_center, BuildsOnWhatItSees())
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    assert await reconcile(reconciler, key) == 0.0  # it created the ConfigMap the second one needs
    assert ("configmaps", "ns", "hi-after") not in kube.objects
    assert await reconcile(reconciler, key) == greeting.GREETING.resync_seconds  # all built: no rerun
    assert ("configmaps", "ns", "hi-after") in kube.objects


async def test_a_reconcile_that_created_every_child_runs_no_more(
    kube: MemoryKube, reconciler: Reconciler
) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    assert await reconcile(reconciler, key) == greeting.GREETING.resync_seconds
    assert ("configmaps", "ns", "hi-greeting") in kube.objects


class Keeper:
    """An extension that builds ``hi-kept`` once and from then on returns the observed object itself (as a
    workflow keeps its pods), and labels it in its mutate hook, counting the calls."""

    def __init__(self) -> None:
        self.mutated = 0

    @hookimpl
    def troupe_build_resources(self, ctx: ReconcileContext[Any]) -> list[Manifest] | None:
        observed = ctx.children.named("ConfigMap", "hi-kept")
        built = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hi-kept"}, "data": {"a": "1"}}
        return [observed if observed is not None else built]

    @hookimpl
    def troupe_mutate_resource(self, ctx: ReconcileContext[Any], resource: Manifest) -> None:
        if resource["metadata"]["name"] == "hi-kept":
            self.mutated += 1
            resource["metadata"].setdefault("labels", {})["kept"] = "yes"


def edited(obj: Manifest, version: str, edit: Callable[[Manifest], None]) -> Manifest:
    """A new version of ``obj``, as the watch shows someone else's edit."""
    new = copy.deepcopy(obj)
    new["metadata"]["resourceVersion"] = version
    edit(new)
    return new


async def test_a_child_kept_as_observed_is_looked_at_again_only_once_it_or_its_owner_changed(
    kube: MemoryKube, clock: FrozenClock
) -> None:
    keeper = Keeper()
    reconciler = reconciler_with(kube, clock, greeting, keeper)
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    child = ChildKey("", "ConfigMap", "ns", "hi-kept")
    await reconcile(reconciler, key)
    assert kube.objects["configmaps", "ns", "hi-kept"]["metadata"]["labels"]["kept"] == "yes"
    kube.writes.clear()
    observed = reconciler.children.find(child)
    assert observed is not None
    before = copy.deepcopy(observed)
    await reconcile(reconciler, key)  # returned as observed: completed and mutated as a copy, unchanged
    assert (keeper.mutated, kube.writes) == (2, [])
    assert observed == before, "the observed object itself is never written into"
    for _ in range(2):
        await reconcile(reconciler, key)
    assert (keeper.mutated, kube.writes) == (2, []), "neither it nor its owner changed: not looked at"
    assert ("configmaps", "ns", "hi-kept") in kube.objects

    owner = reconciler.objects.get(key)
    assert owner is not None
    reconciler.objects.put(key, edited(owner, "500", lambda o: o["metadata"].update(annotations={"a": "b"})))
    await reconcile(reconciler, key)
    assert (keeper.mutated, kube.writes) == (3, []), "its owner changed: looked at again"

    def unlabel(obj: Manifest) -> None:
        del obj["metadata"]["labels"]["kept"]
        obj["metadata"]["managedFields"].append({"manager": "kubectl", "operation": "Update"})

    reconciler.children.put(edited(observed, "600", unlabel))
    await reconcile(reconciler, key)
    # changed: applied again, after the fields its create recorded were made the apply's
    assert keeper.mutated == 4 and kube.writes == ["json-patch configmaps/hi-kept", "apply ConfigMap/hi-kept"]
    assert kube.objects["configmaps", "ns", "hi-kept"]["metadata"]["managedFields"] == [
        {"manager": kube.field_manager, "operation": "Apply"}
    ]
    assert kube.objects["configmaps", "ns", "hi-kept"]["metadata"]["labels"]["kept"] == "yes"


async def test_spec_edit_rolls_out_and_deleted_child_comes_back(
    kube: MemoryKube, reconciler: Reconciler
) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    await reconcile(reconciler, key)
    body = copy.deepcopy(kube.objects["greetings", "ns", "hi"])
    body["spec"]["message"] = "Welcome"
    body["metadata"]["generation"] = body["metadata"].get("generation", 0) + 1  # a spec edit
    body["metadata"]["generation"] = 2
    body["metadata"]["resourceVersion"] = "999"
    reconciler.objects.put(key, body)
    await reconcile(reconciler, key)
    assert kube.objects["configmaps", "ns", "hi-greeting"]["data"]["greeting"] == "Welcome, Ada!"

    cm = kube.objects.pop(("configmaps", "ns", "hi-greeting"))
    reconciler.children.remove(cm)
    await reconcile(reconciler, key)
    assert ("configmaps", "ns", "hi-greeting") in kube.objects


async def test_child_no_longer_desired_is_pruned(kube: MemoryKube, reconciler: Reconciler) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    await reconcile(reconciler, key)
    body = copy.deepcopy(kube.objects["greetings", "ns", "hi"])
    body["spec"]["delivery"] = {"channel": "log"}
    body["metadata"]["generation"] = body["metadata"].get("generation", 0) + 1  # a spec edit
    body["metadata"]["resourceVersion"] = "999"
    reconciler.objects.put(key, body)
    await reconcile(reconciler, key)
    assert ("configmaps", "ns", "hi-greeting") not in kube.objects
    assert "configMap" not in kube.objects["greetings", "ns", "hi"]["status"]


async def test_a_child_is_pruned_only_once_the_status_deciding_it_is_written(
    kube: MemoryKube, reconciler: Reconciler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin may decide a deletion from its status (the observatory: a finished attempt's pod)."""
    monkeypatch.setattr(reporting, "WRITE_BACKOFF", (60.0, 60.0))
    write = kube.patch_status

    async def unavailable(*args: Any, **kwargs: Any) -> Manifest:
        raise ApiException(status=503, reason="Unavailable")

    monkeypatch.setattr(kube, "patch_status", unavailable)
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    await reconcile(reconciler, key)  # its status is decided, not written
    body = copy.deepcopy(kube.objects["greetings", "ns", "hi"])
    body["spec"]["delivery"] = {"channel": "log"}
    body["metadata"]["generation"] = body["metadata"].get("generation", 0) + 1  # a spec edit
    body["metadata"]["resourceVersion"] = "999"
    reconciler.objects.put(key, body)
    await reconcile(reconciler, key)
    assert ("configmaps", "ns", "hi-greeting") in kube.objects, "kept while its status is not on record"
    monkeypatch.setattr(kube, "patch_status", write)
    await reconcile(reconciler, key)
    assert ("configmaps", "ns", "hi-greeting") not in kube.objects


async def test_invalid_spec_fails_with_a_message_and_touches_nothing(
    kube: MemoryKube, reconciler: Reconciler
) -> None:
    key = add_greeting(kube, reconciler, {"name": "nobody"})
    await reconcile(reconciler, key)
    status = kube.objects["greetings", "ns", "hi"]["status"]
    assert status["phase"] == "Failed"
    assert status["conditions"][0]["reason"] == "InvalidSpec"
    assert "deny list" in status["conditions"][0]["message"]
    assert not any(w.startswith("apply") for w in kube.writes)
    assert any("events" in w for w in kube.writes)  # a Warning event says so


async def test_schema_violation_names_the_field(kube: MemoryKube, reconciler: Reconciler) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada", "delivery": {"repeat": 0}})
    await reconcile(reconciler, key)
    message = kube.objects["greetings", "ns", "hi"]["status"]["conditions"][0]["message"]
    assert message.startswith("spec.delivery.repeat:")


async def test_deleting_objects_are_not_reconciled(kube: MemoryKube, reconciler: Reconciler) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    body = copy.deepcopy(kube.objects["greetings", "ns", "hi"])
    body["metadata"]["deletionTimestamp"] = "2026-11-24T09:00:00Z"
    reconciler.objects.put(key, body)
    assert await reconcile(reconciler, key) is None
    assert kube.writes == []


async def test_finalize_tears_down_what_the_builders_leave_out(
    kube: MemoryKube, reconciler: Reconciler
) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    await reconcile(reconciler, key)
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
    await reconcile(reconciler, key)
    for obj in copy.deepcopy(list(kube.objects.values())):
        if obj["kind"] == "ConfigMap":
            reconciler.children.put(obj)
    body = copy.deepcopy(kube.objects["greetings", "ns", "hi"])
    body["spec"] = {"name": "Ada", "delivery": {"repeat": 0}}
    body["metadata"]["generation"] = body["metadata"].get("generation", 0) + 1  # a spec edit
    body["metadata"]["deletionTimestamp"] = "2026-11-24T09:00:00Z"
    writes = len(kube.writes)
    await reconciler.finalize(key, body)
    assert not any(w.startswith("delete") for w in kube.writes[writes:])


async def test_create_only_children_are_never_updated(kube: MemoryKube, reconciler: Reconciler) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    ctx = reconciler.context(key, kube.objects["greetings", "ns", "hi"])
    child = ChildKind("v1", "ConfigMap", "configmaps")
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "cred",
            "namespace": "ns",
            "labels": {"app.kubernetes.io/managed-by": "troupe-example"},
            "annotations": {
                "troupe.dev/owner": "o",
                "troupe.dev/owner-uid": "owner-uid",
                "troupe.dev/create-only": "true",
            },
        },
        "data": {"password": "first"},
    }
    await reconciler.applier.ensure(ctx, child, copy.deepcopy(manifest), ApplyReport(), None)
    manifest["data"]["password"] = "second"
    report = ApplyReport()
    observed = await reconciler.applier.ensure(
        ctx, child, copy.deepcopy(manifest), report, kube.objects["configmaps", "ns", "cred"]
    )
    assert not report.wrote and observed is not None and observed["data"]["password"] == "first"
    assert kube.objects["configmaps", "ns", "cred"]["data"]["password"] == "first"


def users_config_map(kube: MemoryKube, **metadata: Any) -> Manifest:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "hi-greeting",
            "namespace": "ns",
            "uid": "users-uid",
            "resourceVersion": "5",
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update"}],
            **metadata,
        },
        "data": {"mine": "keep"},
    }
    kube.objects["configmaps", "ns", "hi-greeting"] = copy.deepcopy(cm)
    return cm


async def test_a_users_object_with_a_childs_name_is_never_touched(
    kube: MemoryKube, reconciler: Reconciler
) -> None:
    before = users_config_map(kube)
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    delay = await reconcile(reconciler, key)
    assert kube.objects["configmaps", "ns", "hi-greeting"] == before
    assert not any(w.startswith(("apply", "delete")) for w in kube.writes)
    status = kube.objects["greetings", "ns", "hi"]["status"]
    conflict = next(c for c in status["conditions"] if c["type"] == "NameConflict")
    assert conflict["status"] == "True"
    assert "ConfigMap ns/hi-greeting is held by" in conflict["message"]
    assert "kubectl-client-side-apply" in conflict["message"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready == {**ready, "status": "False", "reason": "NameConflict"}
    assert delay is not None and delay <= 15  # looked at again: the user's object is not watched

    del kube.objects["configmaps", "ns", "hi-greeting"]  # the user frees the name: the greeting proceeds
    await reconcile(reconciler, key)
    assert kube.objects["configmaps", "ns", "hi-greeting"]["data"] == {"greeting": "Hello, Ada!"}
    status = kube.objects["greetings", "ns", "hi"]["status"]
    assert next(c for c in status["conditions"] if c["type"] == "NameConflict")["status"] == "False"


async def test_a_previous_owner_of_the_same_name_does_not_make_a_child_ours(
    kube: MemoryKube, reconciler: Reconciler
) -> None:
    """An owner deleted and created again has a new uid: its predecessor's retained child is not its own."""
    users_config_map(
        kube,
        annotations={
            "troupe.dev/owner": "Greeting.example.troupe.dev/ns/hi",
            "troupe.dev/owner-uid": "old-uid",
        },
    )
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    reconciler.children.put(copy.deepcopy(kube.objects["configmaps", "ns", "hi-greeting"]))
    await reconcile(reconciler, key)
    assert kube.objects["configmaps", "ns", "hi-greeting"]["data"] == {"mine": "keep"}
    assert not reconciler.context(key, kube.objects["greetings", "ns", "hi"]).children  # not seen as ours


async def test_a_name_taken_between_look_and_create_is_a_conflict(
    kube: MemoryKube, reconciler: Reconciler
) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    kube.refuse = ApiException(status=409, reason="Conflict")
    await reconcile(reconciler, key)
    status = kube.objects["greetings", "ns", "hi"]["status"]
    assert any(c["type"] == "NameConflict" and c["status"] == "True" for c in status["conditions"])


async def test_field_managers_changed_since_cached_hold_the_apply_until_the_watch_brings_them(
    kube: MemoryKube, reconciler: Reconciler
) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    await reconcile(reconciler, key)
    server = kube.objects["configmaps", "ns", "hi-greeting"]
    server["metadata"]["managedFields"].insert(0, {"manager": "kubectl", "operation": "Update"})
    owner = kube.objects["greetings", "ns", "hi"]
    owner["spec"]["message"] = "Welcome"
    owner["metadata"]["generation"] = 2
    reconciler.objects.put(key, kube._bump(owner))
    kube.writes.clear()
    assert await reconcile(reconciler, key) == 1.0  # retried: the create's entry is not where it was
    assert not any(w.startswith("apply") for w in kube.writes)
    assert server["data"]["greeting"] == "Hello, Ada!"
    reconciler.children.put(copy.deepcopy(kube._bump(server)))  # the watch's version
    await reconcile(reconciler, key)
    cm = kube.objects["configmaps", "ns", "hi-greeting"]
    assert cm["data"]["greeting"] == "Welcome, Ada!"
    assert kube.objects["greetings", "ns", "hi"]["status"]["phase"] == "Ready"


@pytest.mark.parametrize(("code", "retried"), [(500, True), (503, True), (422, False), (400, False)])
async def test_a_refused_child_fails_the_object_naming_the_child(
    kube: MemoryKube, reconciler: Reconciler, code: int, retried: bool
) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    kube.refuse = ApiException(status=code, reason="Refused")
    kube.refuse.body = '{"message": "failed to create typed patch object: .data.x: field not declared"}'
    delays = [await reconcile(reconciler, key) for _ in range(3)]
    status = kube.objects["greetings", "ns", "hi"]["status"]
    assert status["phase"] == "Failed"
    message = status["conditions"][0]["message"]
    assert (
        "ConfigMap ns/hi-greeting" in message
        and "field not declared" in message
        and f"HTTP {code}" in message
    )
    if retried:
        assert delays == [1.0, 2.0, 4.0]  # backoff, and no traceback: the work queue sees a delay
    else:
        assert delays == [None, None, None]
    kube.refuse = None
    await reconcile(reconciler, key)
    assert kube.objects["greetings", "ns", "hi"]["status"]["phase"] == "Ready"


async def test_prune_deletes_only_its_own_object_by_uid(kube: MemoryKube, reconciler: Reconciler) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    await reconcile(reconciler, key)
    body = copy.deepcopy(kube.objects["greetings", "ns", "hi"])
    body["spec"]["delivery"] = {"channel": "log"}
    body["metadata"]["generation"] = body["metadata"].get("generation", 0) + 1  # a spec edit
    body["metadata"]["resourceVersion"] = "999"
    reconciler.objects.put(key, body)
    kube.writes.clear()
    deletes: list[dict[str, Any]] = []
    original = kube.delete

    async def recording_delete(*args: Any, **kwargs: Any) -> bool:
        deletes.append(kwargs)
        return await original(*args, **kwargs)

    kube.delete = recording_delete  # type: ignore[method-assign]
    await reconcile(reconciler, key)
    assert deletes == [{"uid": "child-uid"}]


async def test_no_reconcile_before_the_children_are_listed(kube: MemoryKube, reconciler: Reconciler) -> None:
    reconciler.activity = WatchActivity(stale_after=600)
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    arrived: list[str] = []
    reconciler.activity.on_listed = arrived.append
    assert await reconcile(reconciler, key) == LISTING_RECHECK
    assert kube.writes == []  # nothing built from a child index that may still be empty
    assert reconciler.gated == {key}  # to be run as soon as a listing arrives, not at the next recheck
    reconciler.activity.seen("configmaps@ns", listed=True)
    reconciler.activity.seen("configmaps@ns", listed=True)  # a relisting after a reconnect: nothing new
    assert arrived == ["configmaps@ns"]
    await reconcile(reconciler, key)
    assert "create ConfigMap/hi-greeting" in kube.writes


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
    assert await reconcile(reconciler, key) is None  # putting the finalizer on found it gone
    held = copy.deepcopy(reconciler.objects.get(key))
    assert held is not None
    held["metadata"]["finalizers"] = ["troupe.dev/finalizer"]
    reconciler.objects.put(key, held)
    assert await reconcile(reconciler, key) is not None
    assert kube.writes[-1] == "status hi"


async def test_teardown_steps_then_the_finalizer_goes(kube: MemoryKube, reconciler: Reconciler) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    await reconcile(reconciler, key)
    body = copy.deepcopy(kube.objects["greetings", "ns", "hi"])
    body["metadata"]["deletionTimestamp"] = "2026-11-24T09:00:00Z"
    kube.objects["greetings", "ns", "hi"]["metadata"]["deletionTimestamp"] = "2026-11-24T09:00:00Z"
    reconciler.objects.put(key, body)
    greeting.FINALIZED.clear()
    assert await reconcile(reconciler, key) is None
    assert greeting.FINALIZED == ["hi"]
    assert kube.objects["greetings", "ns", "hi"]["metadata"]["finalizers"] == []
    assert "delete configmaps/hi-greeting" in kube.writes


async def test_a_child_refused_because_its_namespace_is_going_is_no_failure(
    kube: MemoryKube, reconciler: Reconciler
) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    kube.refuse = ApiException(status=403, reason="Forbidden")
    kube.refuse.body = (
        '{"message": "unable to create new content in namespace ns because it is being terminated"}'
    )
    await reconcile(reconciler, key)
    assert kube.objects["greetings", "ns", "hi"]["status"]["phase"] != "Failed"


async def test_the_echoes_of_our_own_writes_ask_for_no_reconcile(
    kube: MemoryKube, reconciler: Reconciler
) -> None:
    # The watch brings back every write of ours (finalizer, child, status) as an event; the cache holds
    # their responses already, so none of them is news, while a change by anyone else is.
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    await reconcile(reconciler, key)
    assert not reconciler.put(key, copy.deepcopy(kube.objects["greetings", "ns", "hi"]))
    echo = copy.deepcopy(kube.objects["configmaps", "ns", "hi-greeting"])
    assert reconciler.children.put(echo) == set()
    edited = copy.deepcopy(kube.objects["greetings", "ns", "hi"])
    edited["metadata"]["resourceVersion"] = str(int(edited["metadata"]["resourceVersion"]) + 1)
    edited["metadata"]["generation"] = 2
    assert reconciler.put(key, edited)
    echo["metadata"]["resourceVersion"] = str(int(echo["metadata"]["resourceVersion"]) + 1)
    assert reconciler.children.put(echo) == {key.owner}


# -- creating a child whose name the watch knows to be free -------------------------------------

CHILD = ChildKey("", "ConfigMap", "ns", "hi-greeting")


@pytest.fixture
def listed(reconciler: Reconciler) -> Reconciler:
    """The reconciler once the ConfigMap listing has arrived: names not seen are known to be free."""
    reconciler.activity = WatchActivity(stale_after=600)
    reconciler.activity.seen("configmaps@ns", listed=True)
    return reconciler


@pytest.fixture
def calls(kube: MemoryKube, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """The GETs (by name), creates and applies (the manifest sent) the core makes."""
    seen: list[tuple[str, Any]] = []
    get, create, apply = kube.get, kube.create, kube.apply

    async def counted_get(api_version: str, plural: str, namespace: str | None, name: str) -> Any:
        seen.append(("get", name))
        return await get(api_version, plural, namespace, name)

    async def counted_create(manifest: Manifest, plural: str, namespace: str | None) -> Any:
        seen.append(("create", copy.deepcopy(manifest)))
        return await create(manifest, plural, namespace)

    async def counted_apply(manifest: Manifest, plural: str, namespace: str | None, **kw: Any) -> Any:
        seen.append(("apply", copy.deepcopy(manifest)))
        return await apply(manifest, plural, namespace, **kw)

    monkeypatch.setattr(kube, "get", counted_get)
    monkeypatch.setattr(kube, "create", counted_create)
    monkeypatch.setattr(kube, "apply", counted_apply)
    return seen


def event(obj: Manifest, kind: str | None = None) -> dict[str, Any]:
    return {"type": kind, "object": obj}


def test_the_name_index_records_child_kinds_only_and_frees_deleted_names() -> None:
    names = NameIndex([("", "ConfigMap")])
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hi-greeting", "namespace": "ns"}}
    names.record("ADDED", cm)
    names.record("ADDED", {**cm, "kind": "Secret"})
    assert names.taken(CHILD) and not names.taken(CHILD._replace(kind="Secret"))
    assert not names.tracks(CHILD._replace(kind="Secret"))
    names.record("DELETED", cm)
    assert not names.taken(CHILD)


async def test_a_name_known_free_is_created_without_a_look(
    kube: MemoryKube, listed: Reconciler, calls: list[tuple[str, Any]]
) -> None:
    key = add_greeting(kube, listed, {"name": "Ada"})
    await reconcile(listed, key)
    assert [c for c in calls if c[0] == "get"] == []
    assert [verb for verb, _ in calls] == ["create"]  # a create, never a merge into someone's object
    assert kube.objects["configmaps", "ns", "hi-greeting"]["data"] == {"greeting": "Hello, Ada!"}


def test_a_name_counts_as_free_only_where_its_listing_has_arrived(reconciler: Reconciler) -> None:
    reconciler.activity = WatchActivity(stale_after=600)
    reconciler.activity.seen("configmaps@ns", listed=True)
    assert reconciler.absent(greeting.GREETING.children[0], CHILD)
    reconciler.activity = WatchActivity(stale_after=600)
    reconciler.activity.seen("configmaps@other", listed=True)
    assert not reconciler.absent(greeting.GREETING.children[0], CHILD)  # another namespace's listing
    reconciler.activity = None
    assert not reconciler.absent(greeting.GREETING.children[0], CHILD)  # nothing known of listings


async def test_a_users_object_the_watch_has_shown_is_looked_at_and_left_alone(
    kube: MemoryKube, listed: Reconciler, calls: list[tuple[str, Any]]
) -> None:
    before = users_config_map(kube)
    listed.names.record("ADDED", copy.deepcopy(before))  # unlabelled: only the name index has it
    key = add_greeting(kube, listed, {"name": "Ada"})
    await reconcile(listed, key)
    assert ("get", "hi-greeting") in calls
    assert not [c for c in calls if c[0] == "apply"]
    assert kube.objects["configmaps", "ns", "hi-greeting"] == before


async def test_a_users_object_the_watch_has_not_shown_refuses_the_create(
    kube: MemoryKube, listed: Reconciler
) -> None:
    """Made in between (its event not in yet): the create's precondition fails, nothing of theirs changes.

    The object has no field managers, so an apply without the precondition would merge into it here.
    """
    before = users_config_map(kube, managedFields=[])
    key = add_greeting(kube, listed, {"name": "Ada"})
    delay = await reconcile(listed, key)
    assert kube.objects["configmaps", "ns", "hi-greeting"] == before
    status = kube.objects["greetings", "ns", "hi"]["status"]
    conflict = next(c for c in status["conditions"] if c["type"] == "NameConflict")
    assert conflict["status"] == "True" and "ConfigMap ns/hi-greeting is held by" in conflict["message"]
    assert delay is not None and delay <= 15


async def test_our_own_child_not_yet_in_the_cache_is_applied_as_ours(
    kube: MemoryKube, listed: Reconciler, calls: list[tuple[str, Any]]
) -> None:
    """A create answered 409 by our own child (created by an earlier reconcile, its event not in yet)."""
    key = add_greeting(kube, listed, {"name": "Ada"})
    await reconcile(listed, key)
    listed.children.forget(key.owner)  # as after a restart, before the child's event
    kube.objects["configmaps", "ns", "hi-greeting"]["data"] = {"greeting": "stale"}
    calls.clear()
    await reconcile(listed, key)
    assert [verb for verb, _ in calls] == ["create", "get", "apply"]  # create refused, look, apply as ours
    assert kube.objects["configmaps", "ns", "hi-greeting"]["data"] == {"greeting": "Hello, Ada!"}
    status = kube.objects["greetings", "ns", "hi"]["status"]
    assert not any(c["type"] == "NameConflict" and c["status"] == "True" for c in status["conditions"])


async def test_the_spec_is_parsed_once_per_generation(kube: MemoryKube, reconciler: Reconciler) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    body = copy.deepcopy(kube.objects["greetings", "ns", "hi"])
    first = reconciler.context(key, body).spec
    assert reconciler.context(key, copy.deepcopy(body)).spec is first  # a child's event: same spec
    body["spec"]["name"] = "Grace"
    body["metadata"]["generation"] += 1
    assert reconciler.context(key, body).spec.name == "Grace"
    body["metadata"]["uid"] = "another-uid"  # deleted and created again: its generation starts over
    body["metadata"]["generation"] = 1
    body["spec"]["name"] = "Ada"
    assert reconciler.context(key, body).spec.name == "Ada"
    reconciler.forget(key)
    assert key not in reconciler._specs


async def test_the_watch_echo_of_a_status_write_under_way_is_no_news(
    kube: MemoryKube, reconciler: Reconciler
) -> None:
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    await reconcile(reconciler, key)  # held, applied, written: the object is on record as Ready
    gate = asyncio.Event()
    sent = kube.patch_status

    async def slow(*args: Any, **kwargs: Any) -> Manifest:
        await gate.wait()
        return await sent(*args, **kwargs)

    kube.patch_status = slow  # type: ignore[method-assign]
    on_record = copy.deepcopy(kube.objects["greetings", "ns", "hi"])
    decided = {**on_record["status"], "phase": "Degraded"}
    await reconciler.reporter.write(key, on_record, StatusUpdate(phase="Degraded"))
    await asyncio.sleep(0)
    sending = reconciler.reporter.sending(key)
    assert sending is not None and sending["phase"] == "Degraded", "the write is under way"

    def event(version: str, **changes: Any) -> Manifest:
        body = copy.deepcopy(on_record)
        body["metadata"]["resourceVersion"] = version
        body["status"] = copy.deepcopy(sending)
        body.update(changes)
        return body

    assert reconciler.put(key, event("900")) is False, "our own write, before its response"
    assert reconciler.put(key, event("901", spec={"name": "Bo"})) is True, "an edit with it is news"
    assert reconciler.put(key, event("902", status={**decided, "phase": "Other"})) is True
    gate.set()
    await reconciler.reporter.settled(key)
    assert reconciler.reporter.sending(key) is None


class AfterSignal:
    """An extension that builds a second child once a ``hi-signal`` child is there (as a workflow starts a
    task once the pod of its dependency succeeded)."""

    @hookimpl
    def troupe_build_resources(self, ctx: ReconcileContext[Any]) -> list[Manifest] | None:
        if ctx.deleting or ctx.children.named("ConfigMap", "hi-signal") is None:
            return None
        return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hi-after"}, "data": {}}]


class SlowKube(MemoryKube):
    """Creates of ``hi-greeting`` are answered once ``gate`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.hanging = asyncio.Event()
        self.sent: list[str] = []

    async def create(self, manifest: Manifest, plural: str, namespace: str | None) -> Manifest:
        self.sent.append(manifest["metadata"]["name"])
        if manifest["metadata"]["name"] == "hi-greeting":
            self.hanging.set()
            await self.gate.wait()
        return await super().create(manifest, plural, namespace)


def signal_child(kube: MemoryKube, name: str = "hi-signal") -> Manifest:
    """A child of the greeting that appeared (the owner annotations of ours, as the watch shows it)."""
    owner = "Greeting.example.troupe.dev/ns/hi"
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"{name}-uid",
            "resourceVersion": "50",
            "labels": {"app.kubernetes.io/managed-by": "troupe-example"},
            "annotations": {"troupe.dev/owner": owner, "troupe.dev/owner-uid": "owner-uid"},
        },
    }
    kube.objects["configmaps", "ns", name] = copy.deepcopy(cm)
    return cm


async def start_a_hanging_create(
    kube: SlowKube, clock: FrozenClock, plugin: Any
) -> tuple[Reconciler, ObjectKey, WorkQueue]:
    """A Greeting's run under way, its create of hi-greeting not answered."""
    reconciler = reconciler_with(kube, clock, greeting, plugin)
    key = add_greeting(kube, reconciler, {"name": "Ada"})
    queue = WorkQueue(reconciler.reconcile)  # type: ignore[arg-type]
    queue.enqueue(key)
    await kube.hanging.wait()
    return reconciler, key, queue


async def run_while_a_create_hangs(clock: FrozenClock, *, taken: bool = False) -> SlowKube:
    """A reconcile whose create of hi-greeting is not answered; meanwhile hi-signal appears (and
    ``taken``: a user's object holds hi-after)."""
    kube = SlowKube()
    reconciler, key, queue = await start_a_hanging_create(kube, clock, AfterSignal())
    if taken:
        kube.objects["configmaps", "ns", "hi-after"] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "hi-after", "namespace": "ns", "uid": "users-uid", "managedFields": []},
        }
    reconciler.children.put(signal_child(kube))
    queue.enqueue(key, reason="child", echo=lambda: False)
    for _ in range(20):
        await asyncio.sleep(0)
    return kube


async def test_a_child_event_while_creates_hang_starts_what_it_makes_buildable(clock: FrozenClock) -> None:
    """The object's run does not wait for the answers of its creates to act on a new child event."""
    kube = await run_while_a_create_hangs(clock)
    assert kube.sent == ["hi-greeting", "hi-after"], "hi-after went out while hi-greeting hangs"
    kube.gate.set()
    await asyncio.sleep(0.05)
    assert ("configmaps", "ns", "hi-greeting") in kube.objects and (
        "configmaps",
        "ns",
        "hi-after",
    ) in kube.objects
    assert kube.sent == ["hi-greeting", "hi-after"], "nothing was sent twice (the rerun finds both there)"


async def test_an_event_that_comes_with_the_last_answer_is_acted_on_in_the_same_run(
    clock: FrozenClock,
) -> None:
    """Its creates go out before the run decides its status, not after it and a rerun."""
    kube = SlowKube()
    reconciler, key, queue = await start_a_hanging_create(kube, clock, AfterSignal())
    reconciler.children.put(signal_child(kube))
    queue.enqueue(key, reason="child", echo=lambda: False)
    kube.gate.set()  # the answer to hi-greeting comes with the event
    await queue.drain()
    await reconciler.reporter.settled(key)
    assert kube.sent == ["hi-greeting", "hi-after"], "nothing was sent twice"
    assert kube.writes.index("create ConfigMap/hi-after") < kube.writes.index("status hi")


async def test_a_name_held_meanwhile_stops_the_run_writing(clock: FrozenClock) -> None:
    kube = await run_while_a_create_hangs(clock, taken=True)
    kube.gate.set()
    await asyncio.sleep(0.05)
    assert (
        "hi-after" not in kube.sent
        and kube.objects["configmaps", "ns", "hi-after"]["metadata"]["uid"] == "users-uid"
    )
    status = kube.objects["greetings", "ns", "hi"]["status"]
    conflict = next(c for c in status["conditions"] if c["type"] == "NameConflict")
    assert conflict["status"] == "True" and "hi-after" in conflict["message"]


async def test_the_echo_of_a_create_in_flight_builds_nothing_again(clock: FrozenClock) -> None:
    """The watch may show a create before its answer comes: nothing else changed, nothing is rebuilt."""
    built: list[int] = []

    class Counting:
        @hookimpl
        def troupe_build_resources(self, ctx: ReconcileContext[Any]) -> list[Manifest] | None:
            built.append(1)
            return None

    kube = SlowKube()
    reconciler, key, queue = await start_a_hanging_create(kube, clock, Counting())
    assert built == [1]
    reconciler.children.put(signal_child(kube, "hi-greeting"))  # the create, as the watch shows it
    queue.enqueue(key, reason="child", echo=lambda: False)
    for _ in range(20):
        await asyncio.sleep(0)
    assert built == [1], "an echo of this run's own create is no news"
    kube.gate.set()
    await queue.drain()


class AfterFirstDone:
    """An extension that builds ``hi-first``, then ``hi-after`` once someone marked ``hi-first`` done (as a
    workflow starts a task once the pod it created for the task before it succeeded)."""

    def __init__(self) -> None:
        self.built = 0

    @hookimpl
    def troupe_build_resources(self, ctx: ReconcileContext[Any]) -> list[Manifest] | None:
        self.built += 1
        first = ctx.children.named("ConfigMap", "hi-first")
        wanted = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hi-first"}}]
        if first is not None and (first.get("data") or {}).get("done") == "yes":
            wanted.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hi-after"}})
        return wanted


async def test_a_child_this_run_created_and_someone_then_changed_is_news(clock: FrozenClock) -> None:
    """A run outlives the children it created when another create hangs (a fast workflow's pods finish
    within it): their appearance is no news, a change by someone else is, and builds on at once."""
    kube = SlowKube()
    plugin = AfterFirstDone()
    reconciler, key, queue = await start_a_hanging_create(kube, clock, plugin)
    for _ in range(20):
        await asyncio.sleep(0)
    assert sorted(kube.sent) == ["hi-first", "hi-greeting"] and plugin.built == 1
    first = reconciler.children.find(ChildKey("", "ConfigMap", "ns", "hi-first"))
    assert first is not None, "the answer to its create is recorded"
    queue.enqueue(key, reason="child", echo=lambda: False)  # its create, as the watch shows it
    for _ in range(20):
        await asyncio.sleep(0)
    assert plugin.built == 1, "a child this run created showing up as created is no news"
    done = copy.deepcopy(first)
    done["data"] = {"done": "yes"}
    done["metadata"]["resourceVersion"] = str(int(first["metadata"]["resourceVersion"]) + 1)
    done["metadata"]["managedFields"] += [{"manager": "someone", "operation": "Update"}]
    reconciler.children.put(done)
    queue.enqueue(key, reason="child", echo=lambda: False)
    for _ in range(20):
        await asyncio.sleep(0)
    assert kube.sent[-1] == "hi-after", "built on the change while hi-greeting hangs"
    kube.gate.set()
    await queue.drain()
    assert kube.sent.count("hi-after") == 1, "nothing was sent twice"


class ReadsData(AfterFirstDone):
    """AfterFirstDone on a kind whose ConfigMaps' owner reads their data only (``ChildKind.reads``), and
    which builds the hanging ``hi-greeting`` itself."""

    KIND = dataclasses.replace(
        greeting.GREETING,
        children=(ChildKind("v1", "ConfigMap", "configmaps", reads=("data",)),),
        finalize=False,
    )

    @hookimpl
    def troupe_kinds(self) -> list[Any]:
        return [self.KIND]

    @hookimpl
    def troupe_build_resources(self, ctx: ReconcileContext[Any]) -> list[Manifest] | None:
        built = super().troupe_build_resources(ctx) or []
        return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hi-greeting"}}, *built]


async def test_a_change_the_owner_does_not_read_of_a_child_this_run_created_is_no_news(
    clock: FrozenClock,
) -> None:
    kube = SlowKube()
    plugin = ReadsData()
    reconciler = reconciler_with(kube, clock, plugin)
    add_greeting(kube, reconciler, {"name": "Ada"})
    key = ObjectKey(ReadsData.KIND, "ns", "hi")
    reconciler.objects.put(key, copy.deepcopy(kube.objects["greetings", "ns", "hi"]))
    queue = WorkQueue(reconciler.reconcile)  # type: ignore[arg-type]
    queue.enqueue(key)
    await kube.hanging.wait()
    for _ in range(20):
        await asyncio.sleep(0)
    first = reconciler.children.find(ChildKey("", "ConfigMap", "ns", "hi-first"))
    assert first is not None and plugin.built == 1

    def change(version: str, edit: Callable[[Manifest], None]) -> None:
        now = edited(first, version, edit)
        now["metadata"]["managedFields"] = [*now["metadata"]["managedFields"], {"manager": "kubelet"}]
        reconciler.children.put(now)
        queue.enqueue(key, reason="child", echo=lambda: False)

    change("700", lambda cm: cm["metadata"].update(annotations={**cm["metadata"]["annotations"], "x": "y"}))
    for _ in range(20):
        await asyncio.sleep(0)
    assert plugin.built == 1, "someone else's annotation on it: nothing its owner reads"
    change("701", lambda cm: cm.update(data={"done": "yes"}))
    for _ in range(20):
        await asyncio.sleep(0)
    assert plugin.built == 2 and kube.sent[-1] == "hi-after", "its data is read: built on at once"
    kube.gate.set()
    await queue.drain()


async def fails_at_once(inputs: dict[str, Any], handle: Any) -> dict[str, Any]:
    raise RuntimeError("registry unreachable")


class Probing:
    """A kind whose status waits for an action that fails at once (a registry that is down)."""

    KIND = dataclasses.replace(greeting.GREETING, actions=(Action("probe", fails_at_once),), finalize=False)

    @hookimpl
    def troupe_kinds(self) -> list[Any]:
        return [self.KIND]

    @hookimpl
    def troupe_aggregate_status(self, ctx: ReconcileContext[Any]) -> StatusUpdate:
        record = ctx.actions.get("probe")
        phase = "Unreachable" if record is not None and record.phase == "Failed" else "Checking"
        return StatusUpdate(phase=phase, actions={"probe": {"to": "registry"}})


async def test_a_step_recorded_again_after_its_end_is_looked_at_once_more(
    kube: MemoryKube, clock: FrozenClock
) -> None:
    probing = Probing()
    reconciler = reconciler_with(kube, clock, probing)
    body = {
        "apiVersion": "example.troupe.dev/v1alpha1",
        "kind": "Greeting",
        "metadata": {"name": "hi", "namespace": "ns", "uid": "u", "generation": 1, "resourceVersion": "1"},
        "spec": {"name": "Ada"},
    }
    kube.objects["greetings", "ns", "hi"] = body
    key = ObjectKey(Probing.KIND, "ns", "hi")
    reconciler.objects.put(key, copy.deepcopy(body))
    await reconcile(reconciler, key)  # starts the probe, writes "Running"
    await asyncio.sleep(0.05)  # the probe failed; its record was overwritten by that "Running"
    reconciler.objects.put(key, copy.deepcopy(kube.objects["greetings", "ns", "hi"]))
    assert kube.objects["greetings", "ns", "hi"]["status"]["actions"]["probe"]["phase"] == "Running"
    assert await reconcile(reconciler, key) == 0.0, "the status hook saw Running: once more, at once"
    assert kube.objects["greetings", "ns", "hi"]["status"]["actions"]["probe"]["phase"] == "Failed"
    reconciler.objects.put(key, copy.deepcopy(kube.objects["greetings", "ns", "hi"]))
    await reconcile(reconciler, key)
    assert kube.objects["greetings", "ns", "hi"]["status"]["phase"] == "Unreachable"


def test_written_sets_paths_and_appends_where_the_path_ends_in_plus() -> None:
    pod = {"kind": "Pod", "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    after = written(
        pod,
        (("status", "conditions", "+"), {"type": "PodScheduled", "status": "True"}),
        (("metadata", "annotations", "example.com/a.b"), "x"),
        (("spec", "nodeName"), "node-1"),
    )
    assert after["status"]["conditions"] == [
        {"type": "Ready", "status": "True"},
        {"type": "PodScheduled", "status": "True"},
    ]
    assert (
        after["metadata"]["annotations"] == {"example.com/a.b": "x"} and after["spec"]["nodeName"] == "node-1"
    )
    assert pod == {"kind": "Pod", "status": {"conditions": [{"type": "Ready", "status": "True"}]}}  # a copy
