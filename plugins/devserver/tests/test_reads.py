"""ChildKind.reads: what the status and the builders read of a DevServer's children, and nothing else.

Each child is taken as the cluster holds it (what the builders applied, or the StatefulSet controller
made, with the status its controllers write), then changed by what other controllers write besides
(``FOREIGN``): neither the status nor the builders may change, and no such change may reconcile the
server. A hook that starts reading one of those fields fails the first test; a ``reads`` that leaves out
what they read fails the last.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from troupe_devserver.builders import FLAVOR_ANNOTATION, Names
from troupe_devserver.models import DevServerSpec
from troupe_devserver.plugin import DEVSERVER, troupe_aggregate_status, troupe_build_resources

from troupe import OWNER_ANNOTATION, ChildKey, Children, ReconcileContext
from troupe.testing import Write, reconciles_owner, written, written_by_others

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq2Tq9sV0m6b1m0rj4Kc2dQe8lW5gq0zv4x3GZ5cH1N dev@laptop"
SPEC = DevServerSpec.model_validate(
    {"owner": "dev@example.com", "flavor": "small", "ssh": {"publicKey": KEY}, "lifetime": "8h"}
)
BODY = {
    "apiVersion": "devserver.io/v1",
    "kind": "DevServer",
    "metadata": {"name": "box", "namespace": "team", "uid": "u", "generation": 1},
    "status": {"startedAt": "2026-11-24T08:59:00Z"},
}
FLAVOR = {
    "apiVersion": "devserver.io/v1",
    "kind": "DevServerFlavor",
    "metadata": {"name": "small"},
    "spec": {},
}
NAMES = Names("box")

#: What other controllers write into these kinds besides what the server reads, by kind:
#: ``(path, value)``, a path as a tuple (annotation keys hold dots); a dict value for a list goes in as
#: one more item (a condition).
FOREIGN: dict[str, list[Write]] = {
    "Secret": [(("metadata", "annotations", "reflector/touched"), "yes")],
    "Service": [(("spec", "clusterIP"), "10.96.0.40"), (("spec", "clusterIPs"), ["10.96.0.40"])],
    "StatefulSet": [
        (("status", "observedGeneration"), 2),
        (("status", "replicas"), 1),
        (("status", "readyReplicas"), 1),
        (("status", "currentReplicas"), 1),
        (("status", "availableReplicas"), 1),
        (("status", "currentRevision"), "box-5d8f7c9b4"),
        (("status", "updateRevision"), "box-5d8f7c9b4"),
        (("status", "collisionCount"), 0),
    ],
    "Pod": [
        (("status", "phase"), "Running"),
        (("status", "podIP"), "10.1.2.3"),
        (("status", "podIPs"), [{"ip": "10.1.2.3"}]),
        (("status", "qosClass"), "Burstable"),
        (("status", "startTime"), "2026-11-24T08:59:01Z"),
        (("status", "conditions", "+"), {"type": "Initialized", "status": "True"}),
        (("status", "conditions", "+"), {"type": "ContainersReady", "status": "True"}),
        (("status", "conditions", "+"), {"type": "PodReadyToStartContainers", "status": "True"}),
        (("metadata", "labels", "apps.kubernetes.io/pod-index"), "0"),
        (("metadata", "labels", "statefulset.kubernetes.io/pod-name"), "box-0"),
    ],
    "PersistentVolumeClaim": [
        (("status", "accessModes"), ["ReadWriteOnce"]),
        (("status", "capacity"), {"storage": "10Gi"}),
        (("spec", "volumeName"), "pvc-1234"),
        (("metadata", "annotations", "pv.kubernetes.io/bind-completed"), "yes"),
        (("metadata", "annotations", "volume.kubernetes.io/storage-provisioner"), "rancher.io/local-path"),
    ],
}


def ctx(children: Children) -> ReconcileContext[DevServerSpec]:
    flavor = Children({ChildKey.of(FLAVOR): FLAVOR})
    return ReconcileContext(kind=DEVSERVER, body=BODY, spec=SPEC, now=NOW, children=children, related=flavor)


def pod(scheduled: bool, waiting: str | None, ready: bool) -> dict[str, Any]:
    conditions = [{"type": "PodScheduled", "status": "True" if scheduled else "False"}]
    if not scheduled:
        conditions[0]["message"] = "0/3 nodes are available: 3 Insufficient memory."
    conditions.append({"type": "Ready", "status": "True" if ready else "False"})
    state = (
        {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": "2026-11-24T08:59:05Z"}}
    )
    status: dict[str, Any] = {"conditions": conditions}
    if scheduled:
        status["hostIP"] = "192.0.2.7"
        status["containerStatuses"] = [{"name": "server", "ready": ready, "state": state}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": NAMES.pod, "namespace": "team", "annotations": {OWNER_ANNOTATION: "x"}},
        "spec": {"nodeName": "node-1"} if scheduled else {},
        "status": status,
    }


def claim(bound: bool) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": NAMES.home_claim, "namespace": "team"},
        "status": {"phase": "Bound" if bound else "Pending"},
    }


def scene(*observed_only: dict[str, Any]) -> Children:
    """What the builders made, with the API server's node port, and the pod and claim as given."""
    made = troupe_build_resources(ctx(Children()))
    for m in made:
        if m["kind"] == "Service" and m["metadata"]["name"] == NAMES.ssh:
            m["spec"]["ports"][0]["nodePort"] = 30022
    return Children({ChildKey.of(o): o for o in (*made, *observed_only)})


SCENES = {
    "claim pending": scene(claim(False), pod(False, None, False)),
    "unschedulable": scene(claim(True), pod(False, None, False)),
    "pulling": scene(claim(True), pod(True, "ErrImagePull", False)),
    "running": scene(claim(True), pod(True, None, True)),
}


@pytest.mark.parametrize("name", SCENES)
def test_what_other_controllers_write_changes_neither_status_nor_builders(name: str) -> None:
    observed = SCENES[name]
    theirs = written_by_others(observed, FOREIGN)
    assert troupe_build_resources(ctx(theirs)) == troupe_build_resources(ctx(observed))
    assert troupe_aggregate_status(ctx(theirs)) == troupe_aggregate_status(ctx(observed))


@pytest.mark.parametrize("name", SCENES)
def test_what_other_controllers_write_reconciles_nobody(name: str) -> None:
    observed = SCENES[name]
    theirs = written_by_others(observed, FOREIGN)
    for key, child in observed.items():
        assert not reconciles_owner(DEVSERVER, child, theirs[key]), child["kind"]


def test_each_field_the_hooks_read_reconciles_the_server() -> None:
    observed = SCENES["running"]
    sts = observed.named("StatefulSet", NAMES.statefulset, "team")
    service = observed.named("Service", NAMES.ssh, "team")
    assert sts is not None and service is not None
    flavor = ("metadata", "annotations", FLAVOR_ANNOTATION)
    for before, after in (
        (claim(False), claim(True)),
        (pod(False, None, False), pod(True, "ContainerCreating", False)),
        (pod(True, "ContainerCreating", False), pod(True, "ErrImagePull", False)),
        (pod(True, None, False), pod(True, None, True)),
        (pod(True, None, True), written(pod(True, None, True), (("status", "hostIP"), "192.0.2.8"))),
        (pod(True, None, True), written(pod(True, None, True), (("spec", "nodeName"), "node-2"))),
        (service, written(service, (("status", "loadBalancer"), {"ingress": [{"ip": "203.0.113.9"}]}))),
        (service, written(service, (("spec", "ports"), [{"name": "ssh", "port": 22, "nodePort": 31000}]))),
        (sts, written(sts, (flavor, '{"name":"big","spec":{}}'))),
    ):
        assert reconciles_owner(DEVSERVER, before, after), (before["kind"], after)


def test_every_child_kind_declares_what_it_reads() -> None:
    assert all(c.reads is not None for c in DEVSERVER.children)
