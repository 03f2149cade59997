from __future__ import annotations

import copy
from typing import Any

import kopf
import pytest

from troupe.engine.apply import (
    OWNER_ANNOTATION,
    RETAIN_ANNOTATION,
    adopt,
    as_applied,
    as_kept,
    complete_child,
    is_subset,
)
from troupe.kinds import ChildKind
from troupe_example.greeting import GREETING

OWNER = {
    "apiVersion": "example.troupe.dev/v1alpha1",
    "kind": "Greeting",
    "metadata": {"name": "hi", "namespace": "ns", "uid": "u-1", "labels": {"team": "a"}},
}


def test_subset_ignores_server_added_fields() -> None:
    desired = {"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"replicas": 1}}
    observed = {
        "metadata": {
            "name": "x",
            "labels": {"a": "1", "b": "2"},
            "resourceVersion": "9",
            "managedFields": [],
        },
        "spec": {"replicas": 1, "strategy": {"type": "RollingUpdate"}},
        "status": {"ready": True},
    }
    assert is_subset(desired, observed)


def test_subset_sees_changes_and_missing_fields() -> None:
    assert not is_subset({"spec": {"replicas": 2}}, {"spec": {"replicas": 1}})
    spec = {
        "containers": [{"name": "main", "image": "i", "nan": float("nan")}]
    }  # nan != nan: walked, it fails
    assert is_subset({"spec": spec}, {"spec": spec}), "a builder's copy of the observed spec is not walked"
    assert not is_subset({"spec": {"paused": False}}, {"spec": {}})
    assert not is_subset({"spec": {"paused": False}}, {"spec": {"paused": 0}})


def test_subset_lists_match_by_position_and_length() -> None:
    desired = {"containers": [{"name": "a", "image": "i"}]}
    assert is_subset(desired, {"containers": [{"name": "a", "image": "i", "imagePullPolicy": "Always"}]})
    assert not is_subset(desired, {"containers": [{"name": "a", "image": "i"}, {"name": "b"}]})
    assert is_subset({"n": 1}, {"n": 1.0})
    assert is_subset({"gone": None}, {})


def test_an_empty_desired_value_matches_an_absent_one() -> None:
    """A retained child is applied with ownerReferences: [], which the server stores as nothing."""
    retained = {"metadata": {"name": "home", "ownerReferences": []}}
    assert is_subset(retained, {"metadata": {"name": "home", "uid": "u"}})
    assert not is_subset(retained, {"metadata": {"name": "home", "ownerReferences": [{"uid": "o"}]}})
    assert is_subset({"data": {}}, {})


def test_subset_of_falsy_and_missing_values() -> None:
    assert is_subset({"n": 0}, {"n": 0}) and is_subset({"s": ""}, {"s": ""})
    assert not is_subset({"n": 0}, {}) and not is_subset({"s": "x"}, {"s": ""})
    assert is_subset({"items": []}, {"items": []}) and is_subset({"items": {}}, {"items": None})
    assert not is_subset({"items": ["a"]}, {"items": []}) and not is_subset({"s": "1"}, {"s": 1})
    assert not is_subset({"flag": False}, {}) and is_subset({"flag": False}, {"flag": False})


def _managed(*entries: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"managedFields": [dict(e, fieldsType="FieldsV1", fieldsV1={}) for e in entries]}}


def test_what_our_create_recorded_becomes_the_applys_by_renaming_its_entry() -> None:
    child = _managed(
        {"manager": "kube-controller-manager", "operation": "Update"},
        {"manager": "troupe-example", "operation": "Update", "subresource": "status"},
        {"manager": "troupe-example", "operation": "Update"},
    )
    assert as_applied(child, "troupe-example") == [
        {"op": "test", "path": "/metadata/managedFields/2/manager", "value": "troupe-example"},
        {"op": "test", "path": "/metadata/managedFields/2/operation", "value": "Update"},
        {"op": "replace", "path": "/metadata/managedFields/2/operation", "value": "Apply"},
    ]


def test_nothing_to_rename_without_our_create_or_beside_our_apply() -> None:
    assert as_applied({"metadata": {}}, "troupe-example") is None
    assert as_applied(_managed({"manager": "kubectl", "operation": "Update"}), "troupe-example") is None
    applied = _managed({"manager": "troupe-example", "operation": "Apply"})
    assert as_applied(applied, "troupe-example") is None
    both = _managed(
        {"manager": "troupe-example", "operation": "Update"},
        {"manager": "troupe-example", "operation": "Apply"},
    )
    assert as_applied(both, "troupe-example") is None  # one manager's apply has one entry


def test_a_child_kept_as_observed_drops_status_and_server_fields_and_copies_its_metadata() -> None:
    observed = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "uid": "u1",
            "resourceVersion": "7",
            "generation": 1,
            "creationTimestamp": "2030-01-01T00:00:00Z",
            "managedFields": [{"manager": "x"}],
            "labels": {"a": "1"},
            "ownerReferences": [{"uid": "o"}],
        },
        "spec": {"containers": [{"name": "main", "image": "i"}]},
        "status": {"phase": "Running"},
    }
    kept = as_kept(observed)
    assert "status" not in kept and set(kept["metadata"]) == {
        "name",
        "namespace",
        "labels",
        "ownerReferences",
    }
    kept["metadata"]["labels"]["extra"] = "x"  # what completing a child does
    kept["metadata"]["ownerReferences"][0]["controller"] = True
    assert observed["metadata"]["labels"] == {"a": "1"} and observed["metadata"]["ownerReferences"] == [
        {"uid": "o"}
    ]
    assert kept["spec"] is observed["spec"], "not deep-copied on every reconcile: nothing writes into it"


def test_complete_child_adds_labels_owner_and_namespace() -> None:
    child = complete_child(
        GREETING,
        OWNER,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
        GREETING.children[0],
    )
    meta = child["metadata"]
    assert meta["namespace"] == "ns"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "troupe-example"
    assert meta["labels"]["app.kubernetes.io/instance"] == "hi"
    assert meta["labels"]["team"] == "a"  # kopf.adopt copies the owner's labels
    assert meta["annotations"][OWNER_ANNOTATION] == "Greeting.example.troupe.dev/ns/hi"
    (ref,) = meta["ownerReferences"]
    assert ref["uid"] == "u-1" and ref["controller"] is True and ref["blockOwnerDeletion"] is True


def test_cluster_scoped_child_of_namespaced_owner_has_no_owner_reference() -> None:
    node_scoped = ChildKind("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", namespaced=False)
    child = complete_child(
        GREETING,
        OWNER,
        {"apiVersion": node_scoped.api_version, "kind": "ClusterRole", "metadata": {"name": "r"}},
        node_scoped,
    )
    assert "ownerReferences" not in child["metadata"] and "namespace" not in child["metadata"]
    assert child["metadata"]["annotations"][OWNER_ANNOTATION] == "Greeting.example.troupe.dev/ns/hi"


def test_child_in_another_namespace_has_no_owner_reference() -> None:
    """GC would take a reference to an owner in another namespace for a missing owner and delete the child."""
    child = complete_child(
        GREETING,
        OWNER,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "elsewhere"}},
        GREETING.children[0],
    )
    assert "ownerReferences" not in child["metadata"]
    assert child["metadata"]["namespace"] == "elsewhere"
    assert child["metadata"]["annotations"][OWNER_ANNOTATION] == "Greeting.example.troupe.dev/ns/hi"


def test_retained_child_gets_an_empty_owner_list_so_apply_releases_it() -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "keep", "annotations": {RETAIN_ANNOTATION: "true"}},
    }
    child = complete_child(GREETING, OWNER, manifest, GREETING.children[0])
    assert child["metadata"]["ownerReferences"] == []
    assert child["metadata"]["annotations"][OWNER_ANNOTATION] == "Greeting.example.troupe.dev/ns/hi"
    owned_before = {"metadata": {"ownerReferences": [{"uid": "u-1"}]}}
    assert not is_subset({"metadata": {"ownerReferences": []}}, owned_before)  # so it is applied


@pytest.mark.parametrize(
    "metadata",
    [
        {"name": "c"},
        {},  # no name: a generateName after the owner
        {"generateName": "x-"},
        {"name": "c", "namespace": "elsewhere", "labels": {"team": "b", "app": "x"}},
        {"name": "c", "ownerReferences": [{"uid": "u-1", "controller": False}]},  # already there
        {"name": "c", "ownerReferences": [{"uid": "other", "kind": "Thing", "name": "t"}]},
        {"name": "c", "namespace": None, "labels": {}},
    ],
)
@pytest.mark.parametrize(
    "owner",
    [
        OWNER,
        {"apiVersion": "example.troupe.dev/v1", "kind": "Cluster", "metadata": {"name": "c", "uid": "u-2"}},
    ],
)
def test_adopt_does_to_a_manifest_what_kopf_adopt_does(
    metadata: dict[str, Any], owner: dict[str, Any]
) -> None:
    """The core completes children without kopf.adopt (its type walk was a fifth of a large reconcile)."""
    ours = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": copy.deepcopy(metadata)}
    theirs = copy.deepcopy(ours)
    adopt(ours, owner)
    kopf.adopt(theirs, owner=owner)  # type: ignore[arg-type]
    assert ours == theirs
