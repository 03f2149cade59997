"""Phases, conditions, timeline and health of a workshop, from manifests and a chosen instant."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from troupe import ChildKey, Children
from troupe.testing import Write, reconciles_owner, written_by_others
from troupe_workshop.builders import build
from troupe_workshop.config import Settings
from troupe_workshop.models import WorkshopSpec
from troupe_workshop.plugin import WORKSHOP
from troupe_workshop.status import workshop_status

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SETTINGS = Settings(
    password_key=b"k" * 32, fail_after=timedelta(minutes=5), restart_after=timedelta(minutes=10)
)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def body(status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "intro", "namespace": "class", "uid": "u", "creationTimestamp": iso(T0)},
        "status": status or {},
    }


def children(
    spec: WorkshopSpec, *, bound: bool = True, ready: bool = True, pods: list[dict[str, Any]] = ()
) -> Children:  # type: ignore[assignment]
    objs = build(spec, body(), Children(), SETTINGS, T0)
    for o in objs:
        o["metadata"]["creationTimestamp"] = iso(T0)
        if o["kind"] == "PersistentVolumeClaim":
            o["status"] = {"phase": "Bound" if bound else "Pending"}
        if o["kind"] == "Deployment":
            o["status"] = {"replicas": 1, "readyReplicas": 1 if ready else 0}
    return Children({ChildKey.of(o): o for o in [*objs, *pods]})


def pod(waiting: str | None = None, ready: bool = False, started: datetime = T0) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "kind": "Pod",
        "metadata": {
            "name": "intro-abc",
            "creationTimestamp": iso(started),
            "labels": {"orchestra.io/workshop": "intro", "orchestra.io/participant": "rstudio"},
        },
        "spec": {"containers": [{"name": "rstudio", "image": "rocker/rstudio:nope"}]},
        "status": {
            "startTime": iso(started),
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "rstudio", "state": state}],
        },
    }


def conds(update: Any) -> dict[str, Any]:
    return {c.type: c for c in update.conditions}


def test_nothing_yet_is_pending_then_creating() -> None:
    spec = WorkshopSpec()
    assert workshop_status(spec, body(), Children(), SETTINGS, T0).phase == "Pending"
    update = workshop_status(spec, body(), children(spec, bound=False), SETTINGS, T0)
    assert update.phase == "Creating"
    assert "claim binds" in conds(update)["Ready"].message
    # the claim bound, RStudio not ready yet: the same status (every step of a start is a status write)
    bound = workshop_status(spec, body(), children(spec, ready=False), SETTINGS, T0 + timedelta(seconds=5))
    assert (bound.phase, bound.conditions, bound.fields) == (update.phase, update.conditions, update.fields)
    # no event marks the claim's fail_after passing: the next look is then, not a poll every few seconds
    assert update.requeue_after == SETTINGS.fail_after.total_seconds()


def test_a_pod_not_ready_is_looked_at_again_at_its_restart_deadline() -> None:
    spec = WorkshopSpec()
    now = T0 + timedelta(minutes=1)
    update = workshop_status(spec, body(), children(spec, ready=False, pods=[pod()]), SETTINGS, now)
    assert update.phase == "Creating"
    assert update.requeue_after == (SETTINGS.restart_after - timedelta(minutes=1)).total_seconds()
    crashing = children(spec, ready=False, pods=[pod("CrashLoopBackOff")])
    assert workshop_status(spec, body(), crashing, SETTINGS, now).requeue_after == 15  # degraded


def test_first_ready_starts_the_clock_and_runs() -> None:
    spec = WorkshopSpec.model_validate({"duration": "2h30m"})
    now = T0 + timedelta(seconds=40)
    update = workshop_status(spec, body(), children(spec), SETTINGS, now)
    assert update.phase == "Running"
    assert update.fields["startedAt"] == iso(now)
    assert update.fields["expiresAt"] == iso(now + timedelta(hours=2, minutes=30))
    assert update.fields["url"] == "http://intro.class.svc:8787/"
    assert update.fields["passwordSecret"] == "intro-password"
    assert update.fields["createdAt"] == iso(T0)
    assert conds(update)["Ready"].status == "True"
    assert conds(update)["ExpiringSoon"].status == "False"
    # next look: when the warning is due
    assert update.requeue_after == (timedelta(hours=2, minutes=15)).total_seconds()
    secret = next(o for o in children(spec).values() if o["kind"] == "Secret")
    assert secret["data"]["password"] not in str(update.fields)
    assert base64.b64decode(secret["data"]["password"]).decode() not in str(update.fields)


def test_a_future_start_time_waits_in_ready() -> None:
    start = T0 + timedelta(hours=1)
    spec = WorkshopSpec.model_validate(
        {"startTime": iso(start), "duration": "1h", "ingress": {"host": "r.io"}}
    )
    update = workshop_status(spec, body(), children(spec), SETTINGS, T0)
    assert update.phase == "Ready" and update.fields["url"] == "http://r.io/"
    assert update.fields["expiresAt"] == iso(start + timedelta(hours=1))
    assert update.requeue_after == 3600
    assert workshop_status(spec, body({"phase": "Ready"}), children(spec), SETTINGS, start).phase == "Running"


def test_expiring_soon_then_expired_deletes_once_torn_down() -> None:
    spec = WorkshopSpec.model_validate({"duration": "1h", "expiryWarning": "10m"})
    status = {"phase": "Running", "startedAt": iso(T0)}
    warn = workshop_status(spec, body(status), children(spec), SETTINGS, T0 + timedelta(minutes=51))
    assert warn.phase == "Running" and conds(warn)["ExpiringSoon"].status == "True"
    assert "save your work" in conds(warn)["ExpiringSoon"].message
    ended = workshop_status(spec, body(status), children(spec), SETTINGS, T0 + timedelta(hours=1))
    assert ended.phase == "Terminating" and not ended.delete
    assert conds(ended)["Ready"].reason == "Expired"
    assert ended.fields["url"] is None
    gone = Children({k: v for k, v in children(spec).items() if k.kind == "PersistentVolumeClaim"})
    done = workshop_status(
        spec, body({**status, "phase": "Terminating"}), gone, SETTINGS, T0 + timedelta(hours=1)
    )
    assert done.delete and "claims kept" in conds(done)["Ready"].message


def test_editing_the_duration_moves_the_end() -> None:
    status = {"phase": "Running", "startedAt": iso(T0)}
    longer = WorkshopSpec.model_validate({"duration": "8h"})
    update = workshop_status(longer, body(status), children(longer), SETTINGS, T0 + timedelta(hours=5))
    assert update.phase == "Running" and update.fields["expiresAt"] == iso(T0 + timedelta(hours=8))


def test_terminating_never_turns_back() -> None:
    spec = WorkshopSpec.model_validate({"duration": "8h"})
    update = workshop_status(
        spec, body({"phase": "Terminating", "startedAt": iso(T0)}), children(spec), SETTINGS, T0
    )
    assert update.phase == "Terminating"


def test_deleted_by_hand_does_not_ask_to_delete_again() -> None:
    spec = WorkshopSpec()
    update = workshop_status(spec, body(), Children(), SETTINGS, T0, deleting=True)
    assert update.phase == "Terminating" and not update.delete
    assert conds(update)["Ready"].reason == "Deleting"


def test_image_that_cannot_be_pulled_fails_after_the_deadline() -> None:
    spec = WorkshopSpec()
    kids = children(spec, ready=False, pods=[pod("ImagePullBackOff")])
    early = workshop_status(spec, body(), kids, SETTINGS, T0 + timedelta(minutes=2))
    assert early.phase == "Creating"
    late = workshop_status(spec, body(), kids, SETTINGS, T0 + timedelta(minutes=5))
    assert late.phase == "Failed"
    ready = conds(late)["Ready"]
    assert (
        ready.reason == "ImagePullFailed"
        and "rocker/rstudio:nope" in ready.message
        and "spec.image" in ready.message
    )


def test_claim_that_never_binds_fails_with_what_to_fix() -> None:
    spec = WorkshopSpec()
    update = workshop_status(spec, body(), children(spec, bound=False), SETTINGS, T0 + timedelta(minutes=6))
    assert update.phase == "Failed"
    assert conds(update)["Ready"].reason == "VolumeNotBound"
    assert "storage.storageClass" in conds(update)["Ready"].message


def test_crash_loop_is_degraded_and_a_stuck_instance_is_restarted_once_per_period() -> None:
    spec = WorkshopSpec()
    running = {"phase": "Running", "startedAt": iso(T0)}
    crashing = workshop_status(
        spec, body(running), children(spec, ready=False, pods=[pod("CrashLoopBackOff")]), SETTINGS, T0
    )
    assert crashing.phase == "Running"
    assert (
        conds(crashing)["Degraded"].status == "True"
        and "crash-looping" in conds(crashing)["Degraded"].message
    )
    stuck = children(spec, ready=False, pods=[pod()])
    at = T0 + timedelta(minutes=11)
    first = workshop_status(spec, body(running), stuck, SETTINGS, at)
    assert first.fields["restarts"] == 1 and first.fields["restartedAt"] == iso(at)
    assert "restarting it" in conds(first)["Degraded"].message
    again = workshop_status(
        spec, body({**running, **first.fields}), stuck, SETTINGS, at + timedelta(minutes=1)
    )
    assert again.fields["restarts"] == 1  # not a restart storm
    later = workshop_status(
        spec, body({**running, **first.fields}), stuck, SETTINGS, at + timedelta(minutes=10)
    )
    assert later.fields["restarts"] == 2


def test_participants_have_their_own_url_and_phase() -> None:
    spec = WorkshopSpec.model_validate({"participants": 2, "ingress": {"host": "r.io", "tlsSecretName": "c"}})
    update = workshop_status(spec, body(), children(spec), SETTINGS, T0)
    assert update.fields["participants"] == [
        {"name": "p1", "url": "https://r.io/p1/", "phase": "Running", "passwordSecret": "intro--p1-password"},
        {"name": "p2", "url": "https://r.io/p2/", "phase": "Running", "passwordSecret": "intro--p2-password"},
    ]
    assert update.fields["url"] == "https://r.io/p1/"


# -- ChildKind.reads: what status and builders read of the children ------------------------------

#: What other controllers write into these kinds besides what the Workshop reads (as seen on the local
#: cluster during a burst of Workshops), by kind (:func:`troupe.testing.written`).
FOREIGN: dict[str, list[Write]] = {
    "PersistentVolumeClaim": [
        (("status", "accessModes"), ["ReadWriteOnce"]),
        (("status", "capacity"), {"storage": "10Gi"}),
        (("spec", "volumeName"), "pvc-1234"),
        (("metadata", "annotations", "pv.kubernetes.io/bind-completed"), "yes"),
        (("metadata", "annotations", "volume.kubernetes.io/storage-provisioner"), "rancher.io/local-path"),
    ],
    "Deployment": [
        (("status", "observedGeneration"), 3),
        (("status", "updatedReplicas"), 1),
        (("status", "availableReplicas"), 1),
        (("status", "unavailableReplicas"), 0),
        (
            ("status", "conditions", "+"),
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
        ),
        (("metadata", "annotations", "deployment.kubernetes.io/revision"), "1"),
    ],
    "Service": [(("status", "loadBalancer"), {}), (("spec", "clusterIP"), "10.96.0.12")],
    "Ingress": [(("status", "loadBalancer"), {"ingress": [{"ip": "10.0.0.1"}]})],
    "Pod": [
        (("status", "phase"), "Running"),
        (("status", "podIP"), "10.1.2.3"),
        (("status", "hostIP"), "10.0.0.9"),
        (("status", "qosClass"), "Guaranteed"),
        (("status", "conditions", "+"), {"type": "PodScheduled", "status": "True"}),
        (("status", "conditions", "+"), {"type": "ContainersReady", "status": "True"}),
        (("spec", "nodeName"), "kwok-node-0"),
    ],
}


SPEC = WorkshopSpec.model_validate({"duration": "1h", "expiryWarning": "10m", "participants": 2})


def pods(**kwargs: Any) -> list[dict[str, Any]]:
    made = []
    for p in ("p1", "p2"):
        one = pod(**kwargs)
        one["metadata"]["name"] = f"intro--{p}-abc"
        one["metadata"]["creationTimestamp"] = iso(T0 - timedelta(minutes=5))  # scheduled, then started
        one["metadata"]["labels"]["orchestra.io/participant"] = p
        made.append(one)
    return made


SCENES = {
    "creating": (children(SPEC, bound=False, ready=False), {}, T0),
    "crash-looping": (children(SPEC, ready=False, pods=pods(waiting="CrashLoopBackOff")), {}, T0),
    "stuck": (children(SPEC, ready=False, pods=pods()), {}, T0 + timedelta(minutes=30)),
    "image": (children(SPEC, ready=False, pods=pods(waiting="ErrImagePull")), {}, T0 + timedelta(hours=1)),
    "running": (children(SPEC, pods=pods(ready=True)), {}, T0),
    "pods ready before their Deployments say so": (
        children(SPEC, ready=False, pods=pods(ready=True)),
        {},
        T0 + timedelta(minutes=30),
    ),
    "running for a while": (
        children(SPEC, pods=pods(ready=True)),
        {"phase": "Running", "startedAt": iso(T0)},
        T0 + timedelta(minutes=30),
    ),
    "expired": (
        children(SPEC, pods=pods(ready=True)),
        {"phase": "Running", "startedAt": iso(T0)},
        T0 + timedelta(hours=2),
    ),
    "scaled down": (
        Children({k: v for k, v in children(SPEC).items() if k.kind in ("Deployment", "Secret")}),
        {"phase": "Terminating", "startedAt": iso(T0)},
        T0 + timedelta(hours=2),
    ),
}


@pytest.mark.parametrize("scene", SCENES)
def test_what_other_controllers_write_changes_neither_status_nor_builders(scene: str) -> None:
    observed, status, now = SCENES[scene]
    theirs = written_by_others(observed, FOREIGN)
    for deleting in (False, True):
        assert workshop_status(SPEC, body(status), theirs, SETTINGS, now, deleting=deleting) == (
            workshop_status(SPEC, body(status), observed, SETTINGS, now, deleting=deleting)
        )
        assert build(SPEC, body(status), theirs, SETTINGS, now, deleting=deleting) == build(
            SPEC, body(status), observed, SETTINGS, now, deleting=deleting
        )


@pytest.mark.parametrize("scene", SCENES)
def test_what_other_controllers_write_reconciles_nobody(scene: str) -> None:
    observed, _, _ = SCENES[scene]
    theirs = written_by_others(observed, FOREIGN)
    for key, child in observed.items():
        assert not reconciles_owner(WORKSHOP, child, theirs[key]), child["kind"]


def test_what_status_reads_of_a_pod_reconciles_its_workshop() -> None:
    starting = pod()
    for change in (pod(ready=True), pod(waiting="CrashLoopBackOff"), pod(started=T0 + timedelta(seconds=9))):
        assert reconciles_owner(WORKSHOP, starting, change)


def test_every_child_kind_declares_what_it_reads() -> None:
    assert all(c.reads is not None for c in WORKSHOP.children)
