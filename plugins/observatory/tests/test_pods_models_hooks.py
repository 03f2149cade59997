"""The pod builder, the models and CRD, the hooks and the metrics."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from troupe import ChildKey, Children, ReconcileContext
from troupe.crd import build_crd
from troupe.engine.metrics import OperatorMetrics
from troupe.testing import reconciles_owner
from troupe_observatory import plugin, workflow
from troupe_observatory.metrics import TaskMetrics, observe
from troupe_observatory.models import OBSERVATORY, ObservatorySpec, Task
from troupe_observatory.pods import build_pod, outcome, pod_name


def test_pod_defaults():
    pod = build_pod("wf", "ns", 1, Task(name="a", image="busybox"), 1)
    assert pod == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "wf-1-a-1",
            "namespace": "ns",
            "labels": {
                "workflow.seventh-horizon.io/workflow": "wf",
                "workflow.seventh-horizon.io/run": "1",
                "workflow.seventh-horizon.io/task": "a",
                "workflow.seventh-horizon.io/attempt": "1",
            },
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]},
    }


def test_pod_every_field():
    task = Task.model_validate(
        {
            "name": "b",
            "image": "alpine",
            "command": ["sh", "-c"],
            "args": ["echo $X"],
            "env": [
                {"name": "X", "value": "1"},
                {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            ],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": 1}},
            "timeout": "1.5s",
            "metadata": {
                "labels": {
                    "team": "x",
                    "workflow.seventh-horizon.io/run": "99",
                    "app.kubernetes.io/managed-by": "me",
                },
                "annotations": {
                    "troupe.dev/kwok-delay": "2s",
                    "troupe.dev/owner": "forged",
                    "troupe.dev/retain": "true",
                },
            },
        }
    )
    pod = build_pod("wf", "ns", 3, task, 2)
    container = pod["spec"]["containers"][0]
    assert container == {
        "name": "main",
        "image": "alpine",
        "command": ["sh", "-c"],
        "args": ["echo $X"],
        "env": [
            {"name": "X", "value": "1"},
            {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ],
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": 1}},
    }
    assert pod["spec"]["activeDeadlineSeconds"] == 2, "rounded up to whole seconds"
    labels = pod["metadata"]["labels"]
    assert labels["team"] == "x" and labels["workflow.seventh-horizon.io/run"] == "3"
    assert "app.kubernetes.io/managed-by" not in labels, "the core's labels cannot be overridden"
    assert pod["metadata"]["annotations"] == {"troupe.dev/kwok-delay": "2s"}


def test_long_names_are_cut_with_a_hash():
    name = pod_name("w" * 60, 12, "t" * 63, 3)
    assert len(name) == 63 and name != pod_name("w" * 60, 12, "t" * 62 + "u", 3)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"phase": "Pending"}, (False, False, None, None)),
        ({"phase": "Running"}, (False, False, None, None)),
        ({"phase": "Succeeded"}, (True, True, 0, None)),
        (
            {"phase": "Failed", "reason": "Evicted", "message": "low on memory"},
            (True, False, None, "Evicted: low on memory"),
        ),
        (
            {
                "phase": "Failed",
                "containerStatuses": [
                    {"name": "main", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}
                ],
            },
            (True, False, 137, "exit code 137 (OOMKilled)"),
        ),
        ({"phase": "Failed"}, (True, False, None, "the pod failed")),
    ],
)
def test_outcome(status, expected):
    seen = outcome({"status": status})
    assert (seen.finished, seen.succeeded, seen.exit_code, seen.message) == expected


def test_spec_defaults_and_bad_values():
    spec = ObservatorySpec.model_validate({"tasks": [{"name": "a", "image": "i"}]})
    assert (spec.suspend, spec.max_concurrent, spec.fail_fast) == (False, None, False)
    assert (spec.concurrency_policy, spec.history_limit, spec.catch_up, spec.pod_gc) == (
        "Allow",
        5,
        None,
        None,
    )
    for bad in (
        {"tasks": []},
        {"tasks": [{"name": "A", "image": "i"}]},
        {"tasks": [{"name": "a", "image": "i", "timeout": "5 min"}]},
        {"tasks": [{"name": "a", "image": "i", "retries": 11}]},
        {"tasks": [{"name": "a", "image": "i"}], "maxConcurrent": 0},
        {"tasks": [{"name": "a", "image": "i"}], "concurrencyPolicy": "Sometimes"},
        {"tasks": [{"name": "a", "image": "i"}], "schedule": "every day"},
    ):
        with pytest.raises(ValidationError):
            ObservatorySpec.model_validate(bad)


def test_crd_contract():
    crd = build_crd(OBSERVATORY)
    version = crd["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    tasks = spec["properties"]["tasks"]
    assert tasks["maxItems"] == 1000 and tasks["x-kubernetes-list-type"] == "map"
    assert tasks["x-kubernetes-list-map-keys"] == ["name"]
    assert set(tasks["items"]["properties"]) >= {"name", "image", "command", "args", "dependencies", "env"}
    assert {"podGC", "catchUp", "timeZone", "startingDeadlineSeconds", "maxConcurrent"} <= set(
        spec["properties"]
    )
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Phase",
        "Tasks",
        "Run",
        "Schedule",
        "Last Schedule",
        "Age",
    ]
    assert crd["spec"]["names"]["shortNames"] == ["obs"]
    assert crd["spec"]["scope"] == "Namespaced"


def ctx(spec: dict, status: dict | None = None) -> ReconcileContext:
    body = {
        "metadata": {"name": "wf", "namespace": "ns", "creationTimestamp": "2030-01-01T00:00:00Z"},
        "spec": spec,
    }
    if status:
        body["status"] = status
    return ReconcileContext(
        kind=OBSERVATORY,
        body=body,
        spec=ObservatorySpec.model_validate(spec),
        now=datetime(2030, 1, 1, tzinfo=UTC),
    )


def test_validate_hook():
    assert plugin.troupe_validate(ctx({"tasks": [{"name": "a", "image": "i"}]})) == []
    messages = plugin.troupe_validate(
        ctx(
            {
                "tasks": [
                    {"name": "a", "image": "i", "dependencies": ["b"]},
                    {"name": "b", "image": "i", "dependencies": ["a", "z"]},
                ],
                "schedule": "61 * * * *",
            }
        )
    )
    assert messages == [
        "spec.tasks[b].dependencies: unknown task 'z' (tasks are: a, b)",
        "spec.tasks: dependency cycle a -> b -> a; remove one of these dependencies",
        "spec.schedule: minute: 61 is out of range 0-59",
    ]


def test_build_and_status_hooks_agree():
    c = ctx({"tasks": [{"name": "a", "image": "i"}]})
    pods = plugin.troupe_build_resources(c)
    assert [p["metadata"]["name"] for p in pods] == ["wf-1-a-1"]
    update = plugin.troupe_aggregate_status(c)
    assert update.phase == "Running", "the status pass records what the build pass started"
    assert update.fields["tasks"][0]["podName"] == "wf-1-a-1"
    assert plugin.troupe_kinds() == [OBSERVATORY]


def _observed(manifest: dict) -> dict:
    """``manifest`` as the API server returns it: server metadata, a defaulted spec, a status."""
    meta = {**manifest["metadata"], "uid": "u1", "resourceVersion": "7", "managedFields": [{"manager": "x"}]}
    return {**manifest, "metadata": meta, "status": {"phase": "Running"}}


def test_pods_to_keep_are_returned_as_observed():
    """The observed pod itself, which the core keeps as it is (no copy per pod per reconcile)."""
    status = plugin.troupe_aggregate_status(ctx({"tasks": [{"name": "a", "image": "i"}]}))
    c = ctx({"tasks": [{"name": "a", "image": "i"}]}, {**status.fields, "phase": status.phase})
    pod = _observed(build_pod("wf", "ns", 1, Task(name="a", image="i"), 1))
    c = dataclasses.replace(c, children=Children({ChildKey.of(pod): pod}))
    (kept,) = plugin.troupe_build_resources(c)
    assert kept is pod


def test_the_status_pass_decides_no_pod_to_keep(monkeypatch):
    status = plugin.troupe_aggregate_status(ctx({"tasks": [{"name": "a", "image": "i"}]}))
    c = ctx({"tasks": [{"name": "a", "image": "i"}]}, {**status.fields, "phase": status.phase})
    pod = _observed(build_pod("wf", "ns", 1, Task(name="a", image="i"), 1))
    c = dataclasses.replace(c, children=Children({ChildKey.of(pod): pod}))
    assert [p["metadata"]["name"] for p in plugin.troupe_build_resources(c)] == ["wf-1-a-1"]

    def no_keep(*args: Any) -> bool:
        raise AssertionError("the status pass decided about a pod it only reads")

    monkeypatch.setattr(workflow, "_keep_pod", no_keep)
    assert plugin.troupe_aggregate_status(c).fields["tasks"][0]["phase"] == "Running"


def test_the_status_pass_reuses_the_build_pass_plan_which_it_would_decide_anyway(monkeypatch):
    c_after_a = {"name": "c", "image": "i", "dependencies": ["a"]}
    spec = {"tasks": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}, c_after_a]}
    c = ctx(spec)
    pods = plugin.troupe_build_resources(c)
    assert [p["metadata"]["name"] for p in pods] == ["wf-1-a-1", "wf-1-b-1"]
    created = {}
    for pod in pods:  # as the API server returns a create: its own creationTimestamp, phase Pending
        meta = {
            **pod["metadata"],
            "uid": pod["metadata"]["name"],
            "creationTimestamp": "2030-01-01T00:00:00Z",
        }
        created[ChildKey.of(pod)] = {**pod, "metadata": meta, "status": {"phase": "Pending"}}
    after = dataclasses.replace(c, children=Children(created))
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return workflow.plan(*args, **kwargs)

    monkeypatch.setattr(plugin, "plan", counted)
    reused = plugin.troupe_aggregate_status(after)
    assert calls == [], "the status pass of the same reconcile plans nothing again"
    fresh = plugin.troupe_aggregate_status(after)  # its build pass's plan is used once only
    assert calls == [1]
    assert reused == fresh
    assert [t["phase"] for t in reused.fields["tasks"]] == ["Running", "Running", "Pending"]


def test_the_cores_second_look_after_creating_plans_nothing_again(monkeypatch):
    """The core runs the builders again on the children as applied (do they build more?): shown the very
    pods this pass was shown and the ones it created, the plan would start nothing more."""
    spec = {"tasks": [{"name": "a", "image": "i"}, {"name": "b", "image": "i", "dependencies": ["a"]}]}
    c = ctx(spec)
    other = _observed(build_pod("wf", "ns", 9, Task(name="a", image="i"), 1))  # a pod of no run
    c = dataclasses.replace(c, children=Children({ChildKey.of(other): other}))
    first = plugin.troupe_build_resources(c)
    (created,) = [p for p in first if p is not other and p["metadata"]["name"] == "wf-1-a-1"]
    applied = {**c.children, ChildKey.of(created): _observed(created)}
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return workflow.plan(*args, **kwargs)

    monkeypatch.setattr(plugin, "plan", counted)
    again = plugin.troupe_build_resources(dataclasses.replace(c, children=Children(applied)))
    assert calls == [] and [p["metadata"]["name"] for p in again] == [p["metadata"]["name"] for p in first]
    # Anything else changed (another object of a pod) is a new question: planned again.
    changed = {**applied, ChildKey.of(other): {**other, "status": {"phase": "Succeeded"}}}
    plugin.troupe_build_resources(dataclasses.replace(c, children=Children(changed)))
    assert calls == [1]
    # So is a later reconcile (another now), whatever it is shown.
    later = dataclasses.replace(c, children=Children(applied), now=datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC))
    plugin.troupe_build_resources(later)
    assert calls == [1, 1]


def test_the_graph_is_checked_and_ordered_once_per_parsed_spec(monkeypatch):
    c = ctx({"tasks": [{"name": "a", "image": "i"}, {"name": "b", "image": "i", "dependencies": ["a"]}]})
    assert plugin.troupe_validate(c) == []
    plugin.troupe_build_resources(c)
    monkeypatch.setattr(plugin.dag, "validate", lambda tasks: ["checked again"])
    monkeypatch.setattr(workflow, "topological", lambda tasks: [])
    assert plugin.troupe_validate(c) == [] and plugin.troupe_build_resources(c)
    fresh = ctx(c.body["spec"])  # a new generation is parsed anew: checked anew
    assert plugin.troupe_validate(fresh) == ["checked again"]


def test_metrics_from_status_transitions():
    registry = CollectorRegistry()
    metrics = TaskMetrics.create(OperatorMetrics("observatory", registry))
    old = {"run": 1, "startTime": "2030-01-01T00:00:00.000Z", "tasks": [
        {"name": "a", "phase": "Running", "attempts": 1, "startedAt": "2030-01-01T00:00:00.000Z"},
        {"name": "b", "phase": "Pending"},
        {"name": "c", "phase": "Running", "attempts": 1, "startedAt": "2030-01-01T00:00:00.000Z"},
    ]}  # fmt: skip
    started = {"attempts": 1, "startedAt": "2030-01-01T00:00:00.000Z"}
    timed_out = {"finishedAt": "2030-01-01T00:00:02Z", "message": "timed out after 2s (DeadlineExceeded)"}
    new = {"run": 1, "startTime": "2030-01-01T00:00:00.000Z", "tasks": [
        {"name": "a", "phase": "Succeeded", **started, "finishedAt": "2030-01-01T00:00:04Z"},
        {"name": "b", "phase": "Running", "attempts": 1, "startedAt": "2030-01-01T00:00:04.250Z"},
        {"name": "c", "phase": "Failed", **started, **timed_out},
    ]}  # fmt: skip
    observe(metrics, old, new, {"a": [], "b": ["a"], "c": []})
    get = registry.get_sample_value
    assert get("troupe_observatory_scheduling_latency_seconds_sum") == pytest.approx(0.25)
    assert get("troupe_observatory_task_duration_seconds_count", {"result": "Succeeded"}) == 1
    assert get("troupe_observatory_task_duration_seconds_sum", {"result": "Failed"}) == 2
    assert get("troupe_observatory_task_failures_total", {"reason": "DeadlineExceeded"}) == 1
    observe(metrics, new, new, {"a": [], "b": ["a"], "c": []})
    assert get("troupe_observatory_task_failures_total", {"reason": "DeadlineExceeded"}) == 1, "counted once"


def test_metrics_of_a_task_that_started_and_ended_between_two_status_writes():
    registry = CollectorRegistry()
    metrics = TaskMetrics.create(OperatorMetrics("observatory", registry))
    run = {"run": 1, "startTime": "2030-01-01T00:00:00.000Z"}
    old = {**run, "tasks": [{"name": "a", "phase": "Pending"}]}
    times = {"startedAt": "2030-01-01T00:00:00.300Z", "finishedAt": "2030-01-01T00:00:01Z"}
    new = {**run, "tasks": [{"name": "a", "phase": "Succeeded", "attempts": 1, **times}]}
    observe(metrics, old, new, {"a": []})
    get = registry.get_sample_value
    assert get("troupe_observatory_scheduling_latency_seconds_sum") == pytest.approx(0.3)
    assert get("troupe_observatory_task_duration_seconds_count", {"result": "Succeeded"}) == 1


#: What the scheduler and the kubelet write into a task pod besides what the observatory reads.
def scheduled(pod: dict[str, Any]) -> dict[str, Any]:
    pod = copy.deepcopy(pod)
    pod["spec"] = {**pod.get("spec", {}), "nodeName": "kwok-node-0"}
    status = pod.setdefault("status", {})
    status["conditions"] = [
        {"type": "PodScheduled", "status": "True"},
        {"type": "Initialized", "status": "True"},
    ]
    status.update(podIP="10.1.2.3", hostIP="10.0.0.9", qosClass="BestEffort")
    return pod


def test_what_the_scheduler_and_kubelet_write_changes_no_plan_and_reconciles_nobody(sim: Any) -> None:
    wf = sim(
        {
            "tasks": [
                {"name": "a", "image": "busybox"},
                {"name": "b", "image": "busybox", "dependencies": ["a"]},
            ]
        }
    )
    steps = [lambda: None, lambda: wf.start("a"), lambda: wf.finish("a"), lambda: wf.start("b")]
    for step in steps:
        step()
        wf.settle()
        plain = wf._plan()
        for name, pod in list(wf.pods.items()):
            assert not reconciles_owner(OBSERVATORY, pod, scheduled(pod)), name
        wf.pods = {name: scheduled(pod) for name, pod in wf.pods.items()}
        bound = wf._plan()
        assert (bound.status, bound.created) == (plain.status, plain.created)
    finished = copy.deepcopy(wf.pod("b"))
    wf.finish("b")
    assert reconciles_owner(OBSERVATORY, finished, wf.pod("b")), "a pod's end is read"


def test_a_pod_starting_changes_no_plan_and_reconciles_nobody_but_its_end_does(sim: Any) -> None:
    wf = sim(
        {
            "tasks": [
                {"name": "a", "image": "busybox"},
                {"name": "b", "image": "busybox", "dependencies": ["a"]},
            ]
        }
    )
    wf.settle()
    pending = copy.deepcopy(wf.pod("a"))
    before = wf._plan()
    wf.start("a")
    running = wf.pod("a")
    running["status"]["containerStatuses"] = [{"name": "main", "state": {"running": {"startedAt": "x"}}}]
    assert not reconciles_owner(OBSERVATORY, pending, running), "its start decides nothing"
    after = wf._plan()
    assert (after.status, after.created) == (before.status, before.created)
    deadline = copy.deepcopy(running)
    deadline["status"].update(phase="Failed", reason="DeadlineExceeded", message="too long")
    assert reconciles_owner(OBSERVATORY, running, deadline), "a pod's end without its container's is read"


def test_a_container_ended_before_its_pod_says_so_is_looked_at_again_soon(sim: Any) -> None:
    """Its phase alone is not read: should a pod's end come in two writes, the second is not missed."""
    wf = sim({"tasks": [{"name": "a", "image": "busybox"}]})
    wf.settle()
    wf.start("a")
    assert wf._plan().status.requeue_after is None
    wf.pod("a")["status"]["containerStatuses"] = [{"name": "main", "state": {"terminated": {"exitCode": 0}}}]
    assert wf._plan().status.requeue_after == 1.0
    assert wf.phases() == {"a": "Running"}
