"""ChildKind.reads: what the status and the builders read of an Environment's children, and nothing else.

Each child is taken as the cluster holds it (what the builders applied, with the status its controller
writes), then changed by what other controllers write besides (``FOREIGN``): neither the status nor the
builders may change, and no such change may reconcile the Environment. A hook that starts reading one of
those fields fails the first test; a ``reads`` that leaves out what they read fails the last.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from troupe import ActionRecord, ChildKey, Children, ReconcileContext
from troupe.context import action_digest
from troupe.testing import Write, reconciles_owner, written, written_by_others
from troupe_catalyst import environment
from troupe_catalyst.config import Settings
from troupe_catalyst.environment import ENVIRONMENT, troupe_aggregate_status, troupe_build_resources
from troupe_catalyst.models import EnvironmentSpec

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SETTINGS = Settings(preview_domain="preview.test", insecure_registries=("reg.test:5000",))
NS = "team-app-pr-1"
PROJECT = {
    "apiVersion": "catalyst.catalyst.dev/v1alpha1",
    "kind": "Project",
    "metadata": {"name": "app", "namespace": "team"},
    "spec": {
        "source": {"repositoryUrl": "https://git.test/org/app.git", "branch": "main"},
        "deployment": {
            "type": "manifest",
            "path": "deploy",
            "values": {"image": {"repository": "reg.test:5000/org/app"}},
        },
        "resources": {"defaultQuota": {"cpu": "1", "memory": "2Gi"}},
    },
}

#: What other controllers write into these kinds besides what the Environment reads, by kind:
#: ``(path, value)``, a path as a tuple (label keys hold dots).
FOREIGN: dict[str, list[Write]] = {
    "Namespace": [
        (("status", "phase"), "Active"),
        (("metadata", "labels", "kubernetes.io/metadata.name"), NS),  # the API server's, on create
    ],
    "ResourceQuota": [  # the quota controller, on every pod started or gone
        (("status", "hard"), {"requests.cpu": "1", "requests.memory": "2Gi"}),
        (("status", "used"), {"requests.cpu": "250m", "requests.memory": "512Mi"}),
    ],
    "Ingress": [(("status", "loadBalancer"), {"ingress": [{"ip": "10.0.0.1"}]})],
    "NetworkPolicy": [(("metadata", "generation"), 1)],
    "Job": [  # the Job controller while its pod runs
        (("status", "active"), 1),
        (("status", "ready"), 1),
        (("status", "terminating"), 0),
        (("status", "uncountedTerminatedPods"), {}),
        (("spec", "selector"), {"matchLabels": {"batch.kubernetes.io/controller-uid": "j1"}}),
    ],
}


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(environment, "_settings", SETTINGS)


def image_found(exists: bool) -> dict[str, Any]:
    """The status after the image check: the commit's image is in the registry, or is to be built."""
    inputs = {
        "repository": "reg.test:5000/org/app",
        "tag": "abc123",
        "secret": None,
        "insecure": True,
        "stage": "check",
        "attempt": 0,
    }
    record = ActionRecord(digest=action_digest(inputs), phase="Succeeded", startedAt="t", finishedAt="t")  # type: ignore[arg-type]
    record.result = {"exists": exists}
    return {"actions": {"image": record.model_dump()}}


def context(children: Children, status: dict[str, Any], project: bool = True) -> ReconcileContext[Any]:
    body = {
        "apiVersion": "catalyst.catalyst.dev/v1alpha1",
        "kind": "Environment",
        "metadata": {
            "name": "pr-1",
            "namespace": "team-app",
            "uid": "u1",
            "generation": 1,
            "labels": {"catalyst.dev/team": "team"},
        },
        "spec": {"projectRef": {"name": "app"}, "source": {"commitSha": "abc123", "branch": "feat"}},
        "status": status,
    }
    return ReconcileContext(
        kind=ENVIRONMENT,
        body=body,
        spec=EnvironmentSpec.model_validate(body["spec"]),
        now=T0,
        children=children,
        related=Children({ChildKey.of(PROJECT): PROJECT} if project else {}),
    )


def job(ended: str | None) -> dict[str, Any]:
    conditions = [{"type": ended, "status": "True", "reason": "Done", "message": ""}] if ended else []
    status: dict[str, Any] = {"startTime": "2026-11-26T09:00:01Z", "conditions": conditions}
    if ended:
        status["completionTime"] = "2026-11-26T09:01:00Z"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "build-abc123", "namespace": NS, "creationTimestamp": "2026-11-26T09:00:00Z"},
        "status": status,
    }


def scene(name: str) -> tuple[Children, dict[str, Any]]:
    """What the builders made (the namespace observed), the build Job as its controller left it, and the
    Environment's status."""
    status, job_state = SCENES[name]
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    observed = Children({ChildKey.of(namespace): namespace})
    made = [m for m in troupe_build_resources(context(observed, status)) or [] if m["kind"] != "Job"]
    if job_state != "none":
        made.append(job(job_state))
    return Children({ChildKey.of(m): m for m in made}), status


#: name: (the Environment's status, the build Job's end: None while it runs, "none" for no Job)
SCENES: dict[str, tuple[dict[str, Any], str | None]] = {
    "checking the image": ({}, "none"),
    "building": (image_found(False), None),
    "built": (image_found(False), "Complete"),
    "build failed": (image_found(False), "Failed"),
    "deploying": (image_found(True), "none"),
}


@pytest.mark.parametrize("name", SCENES)
def test_what_other_controllers_write_changes_neither_status_nor_builders(name: str) -> None:
    observed, status = scene(name)
    for project in (True, False):  # without its Project, an Environment keeps its children as observed
        ours, theirs = (
            context(observed, status, project),
            context(written_by_others(observed, FOREIGN), status, project),
        )
        assert troupe_build_resources(theirs) == troupe_build_resources(ours)
        assert troupe_aggregate_status(theirs) == troupe_aggregate_status(ours)


@pytest.mark.parametrize("name", SCENES)
def test_what_other_controllers_write_reconciles_nobody(name: str) -> None:
    observed = scene(name)[0]
    theirs = written_by_others(observed, FOREIGN)
    for key, child in observed.items():
        assert not reconciles_owner(ENVIRONMENT, child, theirs[key]), child["kind"]


def test_each_field_the_hooks_read_reconciles_the_environment() -> None:
    observed, _ = scene("building")
    (quota,) = observed.of_kind("ResourceQuota")
    (ingress,) = observed.of_kind("Ingress")
    for before, after in (
        (job(None), job("Complete")),
        (job(None), job("Failed")),
        (job(None), written(job(None), (("status", "startTime"), "2026-11-26T09:00:09Z"))),
        (job("Complete"), written(job("Complete"), (("status", "completionTime"), "2026-11-26T09:02:00Z"))),
        (quota, written(quota, (("spec", "hard"), {"requests.cpu": "8"}))),
        (quota, written(quota, (("metadata", "labels"), {"team": "x"}))),
        (ingress, written(ingress, (("metadata", "annotations"), {"nginx.ingress.kubernetes.io/x": "y"}))),
    ):
        assert reconciles_owner(ENVIRONMENT, before, after), (before["kind"], after)


def test_every_child_kind_declares_what_it_reads() -> None:
    assert all(c.reads is not None for c in ENVIRONMENT.children)


def test_children_kept_while_the_project_is_missing_share_no_map_with_the_observed() -> None:
    """The core completes a built child in place (its standard labels): the observed one is the cache's."""
    observed, status = scene("deploying")
    kept = troupe_build_resources(context(observed, status, project=False)) or []
    assert {m["kind"] for m in kept} >= set(environment.KEPT_AS_IS)
    for manifest in kept:
        seen = observed.named(manifest["kind"], manifest["metadata"]["name"])
        for field in ("labels", "annotations"):
            if seen is not None and field in seen["metadata"]:
                assert manifest["metadata"][field] is not seen["metadata"][field], (manifest["kind"], field)
