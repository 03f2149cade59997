"""The watch caches: echoes of our own writes change nothing, and cached bodies are trimmed."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from troupe.context import ChildKey
from troupe.engine import cache
from troupe.engine.cache import (
    APPLIED_FIELDS,
    ChildIndex,
    ObjectCache,
    ObjectKey,
    RelatedIndex,
    read_at,
    trimmed,
)
from troupe.kinds import ChildKind, KindSpec

OWNER = "Greeting.example.troupe.dev/ns/hi"


def child(version: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "hi-greeting",
            "namespace": "ns",
            "resourceVersion": version,
            "annotations": {"troupe.dev/owner": OWNER},
            "managedFields": [
                {
                    "manager": "troupe-example",
                    "operation": "Apply",
                    "apiVersion": "v1",
                    "time": "2026-11-26T14:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:data": {"f:greeting": {}}},
                }
            ],
        },
        "data": data,
    }


def test_the_echo_of_our_own_apply_changes_no_owner() -> None:
    index = ChildIndex()
    assert index.put(child("5", greeting="hi")) == {OWNER}  # the apply's response, recorded by the applier
    assert index.put(child("5", greeting="hi")) == set()  # its watch event: nothing new, no reconcile
    assert index.put(child("4")) == set()  # an older version arriving late
    assert index.put(child("6", greeting="hello")) == {OWNER}  # someone else's change: reconcile
    assert index.find(next(iter(index.children(OWNER, "")))) is not None


def test_the_echo_of_our_own_status_write_is_not_new() -> None:
    cache = ObjectCache()
    body = {"metadata": {"name": "hi", "resourceVersion": "7"}, "status": {"phase": "Ready"}}
    assert cache.put("k", body)
    assert not cache.put("k", dict(body))  # the watch brings back what the status patch returned
    assert not cache.put("k", {"metadata": {"name": "hi", "resourceVersion": "6"}})
    assert cache.put("k", {"metadata": {"name": "hi", "resourceVersion": "8"}, "spec": {"x": 1}})


def test_a_related_objects_relisting_reconciles_nobody() -> None:
    index = RelatedIndex()
    flavor = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "f", "resourceVersion": "3"}}
    index.track("user", {ChildKey.of(flavor)})
    assert index.put(flavor) == {"user"}
    assert index.put(dict(flavor)) == set()  # a watch reconnect lists it again
    assert index.put({**flavor, "metadata": {"name": "f", "resourceVersion": "4"}}) == {"user"}


def test_cached_bodies_keep_the_managers_names_but_not_their_field_sets() -> None:
    body = child("5", greeting="hi")
    body["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{...}" * 1000
    kept = trimmed(body)
    (entry,) = kept["metadata"]["managedFields"]
    assert {k: v for k, v in entry.items() if k != APPLIED_FIELDS} == {
        "manager": "troupe-example",
        "operation": "Apply",
    }
    assert isinstance(entry[APPLIED_FIELDS], int)  # what the apply owns, as a digest
    assert kept["metadata"]["annotations"] == {"troupe.dev/owner": OWNER}
    assert kept["data"] == body["data"]
    assert "fieldsV1" in body["metadata"]["managedFields"][0]  # the caller's body is left as it was
    index = ChildIndex()
    index.put(body)
    stored = index.children(OWNER, "")
    assert all("fieldsV1" not in m for c in stored.values() for m in c["metadata"]["managedFields"])
    cache = ObjectCache()
    cache.put("k", body)
    assert "fieldsV1" not in (cache.get("k") or {})["metadata"]["managedFields"][0]


def test_the_versions_of_our_own_writes_are_remembered_per_object() -> None:
    cache = ObjectCache()
    cache.put("k", {"metadata": {"resourceVersion": "1"}})
    cache.put("k", {"metadata": {"resourceVersion": "2"}}, ours=True)  # the finalizer
    cache.put("k", {"metadata": {"resourceVersion": "3"}}, ours=True)  # the status
    assert ("k", "2") in cache.ours and ("k", "3") in cache.ours
    assert ("k", "1") not in cache.ours and ("j", "2") not in cache.ours
    index = ChildIndex()
    index.put(child("5"), ours=True)
    index.put(child("6"))
    key = next(iter(index.children(OWNER, "")))
    assert (key, "5") in index.ours and (key, "6") not in index.ours
    cache.pop("k")
    assert ("k", "3") not in cache.ours


def test_cached_bodies_share_their_keys_and_short_strings() -> None:
    import json

    text = json.dumps(child("5", greeting="hi", phase="Running"))
    first, second = trimmed(json.loads(text)), trimmed(json.loads(text))
    (k1,) = [k for k in first["data"] if k == "greeting"]
    (k2,) = [k for k in second["data"] if k == "greeting"]
    assert k1 is k2  # one string for every cached object's key, not one per parsed body
    assert first["data"]["phase"] is second["data"]["phase"]
    assert first == json.loads(text) | {"metadata": first["metadata"]}


def test_a_new_version_keeps_the_unchanged_parts_of_the_cached_one() -> None:
    import json

    cached = trimmed(json.loads(json.dumps(child("5", greeting="hi", phase="Pending"))))
    new = json.loads(json.dumps(child("6", greeting="hi", phase="Running")))
    new["metadata"]["labels"] = {"app": "hi"}
    kept = trimmed(new, cached)
    assert kept == trimmed(new)  # the same body as without the cached version
    assert kept["metadata"]["annotations"] is cached["metadata"]["annotations"]  # unchanged: taken over
    assert kept["data"] is not cached["data"] and cached["data"]["phase"] == "Pending"  # the old one stays
    assert kept["metadata"]["resourceVersion"] == "6" and kept["data"]["phase"] == "Running"
    assert "fieldsV1" in new["metadata"]["managedFields"][0]  # the caller's body is left as it was
    # another writer's take-over of an applied field changes the apply's digest, cached version or not
    taken = json.loads(json.dumps(child("7", greeting="hi", phase="Running")))
    taken["metadata"]["managedFields"][0]["fieldsV1"] = {"f:data": {}}
    assert trimmed(taken, kept)["metadata"]["managedFields"] != kept["metadata"]["managedFields"]
    index = ChildIndex()
    index.put(json.loads(json.dumps(child("5", greeting="hi"))))
    index.put(new)
    (stored,) = index.children(OWNER, "").values()
    assert stored == trimmed(new)


def test_object_keys_hash_by_kind_namespace_and_name() -> None:
    kind = KindSpec(operator="x", group="g.io", version="v1", kind="K", plural="ks", spec_model=BaseModel)
    same = KindSpec(operator="x", group="g.io", version="v1", kind="K", plural="ks", spec_model=BaseModel)
    other = KindSpec(operator="x", group="h.io", version="v1", kind="K", plural="ks", spec_model=BaseModel)
    assert {ObjectKey(kind, "ns", "a"): 1}.get(ObjectKey(same, "ns", "a")) == 1
    assert ObjectKey(kind, "ns", "a") != ObjectKey(other, "ns", "a")
    assert len({ObjectKey(kind, "ns", "a"), ObjectKey(kind, "ns", "b"), ObjectKey(kind, None, "a")}) == 3


def _deployment(
    version: str,
    *,
    ready: int = 0,
    conditions: str = "",
    labels: dict[str, str] | None = None,
    applied: dict[str, Any] | None = None,
    operation: str = "Apply",
) -> dict[str, Any]:
    """A Deployment of ours as the watch brings it: our apply's fields (``applied``, by default
    ``spec.replicas``; ``operation="Update"``: our create's), the controller's status."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "hi",
            "namespace": "ns",
            "resourceVersion": version,
            "labels": labels or {},
            "annotations": {"troupe.dev/owner": OWNER},
            "managedFields": [
                {
                    "manager": "troupe-example",
                    "operation": operation,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": applied if applied is not None else {"f:spec": {"f:replicas": {}}},
                },
                {"manager": "kube-controller-manager", "operation": "Update", "time": version},
            ],
        },
        "spec": {"replicas": 1},
        "status": {"readyReplicas": ready, "conditions": [{"type": "Progressing", "reason": conditions}]},
    }


def _greeting_kind(reads: tuple[str, ...] | None) -> KindSpec:
    from pydantic import BaseModel

    return KindSpec(
        operator="example",
        group="example.troupe.dev",
        version="v1",
        kind="Greeting",
        plural="greetings",
        spec_model=BaseModel,
        status_model=BaseModel,
        children=(ChildKind("apps/v1", "Deployment", "deployments", reads=reads),),
    )


def test_a_change_the_owner_does_not_read_is_recorded_but_reconciles_nobody() -> None:
    index = ChildIndex([_greeting_kind(("status.readyReplicas",))])
    assert index.put(_deployment("1")) == {OWNER}  # a new child always counts
    assert index.put(_deployment("2", conditions="NewReplicaSetAvailable")) == set()  # unread: no reconcile
    (key,) = index.children(OWNER, "")
    assert index.find(key)["status"]["conditions"][0]["reason"] == "NewReplicaSetAvailable"  # type: ignore[index]
    assert index.put(_deployment("3", ready=1, conditions="NewReplicaSetAvailable")) == {OWNER}  # read
    # another controller's label or annotation is its own business: re-applying would not touch it
    foreign = _deployment("4", ready=1, conditions="x", labels={"a": "b"})
    foreign["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "1"
    assert index.put(foreign) == set()


def test_drift_of_what_was_applied_counts_by_the_fields_the_apply_owns() -> None:
    index = ChildIndex([_greeting_kind(())])
    assert index.put(_deployment("1")) == {OWNER}
    # `kubectl scale` took spec.replicas over: our apply owns one field less
    scaled = _deployment("2", applied={})
    scaled["spec"]["replicas"] = 3
    assert index.put(scaled) == {OWNER}
    assert index.put(_deployment("3")) == {OWNER}  # applied again: ours again
    gone = _deployment("4")
    gone["metadata"]["deletionTimestamp"] = "2026-11-26T14:00:00Z"
    assert index.put(gone) == {OWNER}  # a deletion starting


def test_drift_of_what_our_create_recorded_counts_and_its_becoming_the_applys_is_no_news() -> None:
    index = ChildIndex([_greeting_kind(())], own_manager="troupe-example")
    assert index.put(_deployment("1", operation="Update")) == {OWNER}
    scaled = _deployment("2", applied={}, operation="Update")
    scaled["spec"]["replicas"] = 3
    assert index.put(scaled) == {OWNER}  # `kubectl scale` took spec.replicas from our create
    assert index.put(_deployment("3", applied={}, operation="Apply")) == set()  # the same fields, as applied
    # Another program's Update entries (here: anyone's, no manager is ours) are theirs: no drift
    theirs = ChildIndex([_greeting_kind(())])
    theirs.put(_deployment("1", operation="Update"))
    assert theirs.put(scaled) == set()


def test_without_a_declaration_every_change_counts() -> None:
    for index in (ChildIndex(), ChildIndex([_greeting_kind(None)])):
        assert index.put(_deployment("1")) == {OWNER}
        assert index.put(_deployment("2", conditions="NewReplicaSetAvailable")) == {OWNER}


def test_reads_of_nothing_still_see_a_move_to_another_owner() -> None:
    index = ChildIndex([_greeting_kind(())])
    assert index.put(_deployment("1")) == {OWNER}
    assert index.put(_deployment("2", ready=1, conditions="y", labels={"a": "b"})) == set()
    moved = _deployment("3", ready=1, conditions="y", labels={"a": "b"})
    moved["metadata"]["annotations"]["troupe.dev/owner"] = "Greeting.example.troupe.dev/ns/other"
    assert index.put(moved) == {OWNER, "Greeting.example.troupe.dev/ns/other"}  # a move: both owners


def test_reads_enter_lists_by_their_items_type_or_name() -> None:
    pod = {
        "spec": {"nodeName": "n1"},
        "status": {
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "rstudio", "ready": False}],
        },
    }
    assert read_at(pod, ("status", "conditions", "Ready", "status")) == "False"
    assert read_at(pod, ("status", "containerStatuses", "rstudio", "ready")) is False
    assert read_at(pod, ("status", "conditions", "Initialized", "status")) is None
    assert read_at(pod, ("spec", "nodeName", "deeper")) is None
    index = ChildIndex([_greeting_kind(("status.conditions.Ready.status", "spec.template"))])
    assert index.put(_deployment("1")) == {OWNER}
    ready = _deployment("2")
    ready["status"]["conditions"].append({"type": "Ready", "status": "True"})
    assert index.put(ready) == {OWNER}
    other = _deployment("3")
    other["status"]["conditions"] = [
        {"type": "Ready", "status": "True"},
        {"type": "Available", "status": "True"},
    ]
    assert index.put(other) == set()  # another condition, and the order: Ready's status is the same


def test_bodies_cached_while_sharing_later_share_their_strings_once_asked() -> None:
    def body(i: int) -> dict[str, Any]:  # parsed apart: equal strings, distinct objects
        return json.loads(
            json.dumps({"metadata": {"name": f"w{i}", "uid": "u"}, "spec": {"tags": ["Running"]}})
        )

    with cache.sharing_later():
        first = cache.trimmed(body(1))
    second = cache.trimmed(body(2))  # outside: shared at once
    assert first["spec"]["tags"][0] is not second["spec"]["tags"][0]
    before = json.dumps(first)
    assert cache.share_some(count=1) is False  # the last one waiting
    assert first["spec"]["tags"][0] is second["spec"]["tags"][0]
    assert first["metadata"]["uid"] is second["metadata"]["uid"]
    assert json.dumps(first) == before  # nothing any reader can tell apart


def test_share_some_takes_a_slice_at_a_time() -> None:
    with cache.sharing_later():
        for i in range(5):
            cache.trimmed({"metadata": {"name": f"w{i}"}})
    assert cache.share_some(count=2) is True
    assert cache.share_some(count=2) is True
    assert cache.share_some(count=2) is False
