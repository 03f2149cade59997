"""The observatory operator on the real local cluster, run as its chart's ServiceAccount.

kwok finishes task pods on demand: ``troupe.dev/kwok-exit: "<code>"`` sets the outcome and
``troupe.dev/kwok-delay`` how long the pod runs; tasks pass them through ``metadata.annotations``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import (
    ROOT,
    Operator,
    apply,
    create_namespace,
    delete_namespace,
    get,
    installed_operator,
    kubectl,
    kubectl_json,
    new_namespace_name,
    wait_for,
)

pytestmark = pytest.mark.e2e

EXAMPLES = ROOT / "plugins" / "observatory" / "examples"
KIND = "observatories.workflow.seventh-horizon.io"
RELEASE = "obs"


@pytest.fixture(scope="module")
def operator(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    with installed_operator(
        "observatory", cluster, tmp_path_factory.mktemp("observatory"), release=RELEASE
    ) as op:
        yield op


@pytest.fixture(scope="module")
def cron_namespace(operator: Operator) -> Iterator[str]:
    """A per-minute workflow created first, checked by the last test: its two minutes overlap the rest."""
    namespace = create_namespace(new_namespace_name("observatory-cron"))
    apply(
        workflow("every-minute", [task("tick"), task("tock", "tick")], schedule="* * * * *", historyLimit=5),
        namespace,
    )
    yield namespace
    delete_namespace(namespace)


def workflow(name: str, tasks: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "workflow.seventh-horizon.io/v1alpha1",
        "kind": "Observatory",
        "metadata": {"name": name},
        "spec": {"tasks": tasks, **spec},
    }


def task(
    name: str, *deps: str, delay: str | None = None, exit: int | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "image": "busybox:1.36", **extra}
    if deps:
        body["dependencies"] = list(deps)
    annotations = {}
    if delay:
        annotations["troupe.dev/kwok-delay"] = delay
    if exit is not None:
        annotations["troupe.dev/kwok-exit"] = str(exit)
    if annotations:
        body["metadata"] = {"annotations": annotations}
    return body


def obs(name: str, namespace: str) -> dict[str, Any] | None:
    return get(KIND, name, namespace)


def phase_is(*phases: str) -> Callable[[dict[str, Any] | None], bool]:
    return lambda o: bool(o) and (o.get("status") or {}).get("phase") in phases


def task_of(o: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in o["status"]["tasks"] if t["name"] == name)


def pods(namespace: str, workflow_name: str) -> list[dict[str, Any]]:
    return kubectl_json(
        "get", "pods", "-n", namespace, "-l", f"workflow.seventh-horizon.io/workflow={workflow_name}"
    )["items"]


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def interval(pod: dict[str, Any]) -> tuple[datetime, datetime]:
    """When a pod ran, from its own timestamps (kwok sets startTime and the container's finishedAt)."""
    finished = pod["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]
    return ts(pod["status"]["startTime"]), ts(finished)


def test_seed_example_runs_to_the_end(operator: Operator, cron_namespace: str, namespace: str) -> None:
    apply((EXAMPLES / "observatory.yaml").read_text(), namespace)
    done = wait_for(lambda: obs("my-workflow", namespace), phase_is("Succeeded"), 60, "my-workflow Succeeded")
    status = done["status"]
    assert status["progress"] == "3/3" and status["run"] == 1
    assert [t["phase"] for t in status["tasks"]] == ["Succeeded"] * 3
    assert status["startTime"] and status["completionTime"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True", "Completed": "True", "Failed": "False", "Suspended": "False",
    }  # fmt: skip
    columns = kubectl("get", "obs", "my-workflow", "-n", namespace).stdout.split()
    assert columns[:4] == ["NAME", "PHASE", "TASKS", "RUN"] and "Succeeded" in columns and "3/3" in columns

    pod = get("pod", "my-workflow-1-task-2-1", namespace)
    assert pod is not None
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["labels"]["workflow.seventh-horizon.io/workflow"] == "my-workflow"
    assert meta["labels"]["workflow.seventh-horizon.io/run"] == "1"
    assert meta["labels"]["workflow.seventh-horizon.io/task"] == "task-2"
    assert meta["labels"]["workflow.seventh-horizon.io/attempt"] == "1"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "troupe-observatory"
    assert meta["ownerReferences"][0]["kind"] == "Observatory"
    assert meta["ownerReferences"][0]["name"] == "my-workflow"
    assert spec["restartPolicy"] == "Never"
    container = spec["containers"][0]
    assert container["image"] == "busybox:1.36"
    assert container["command"] == ["sh", "-c"] and container["args"] == ["echo processing"]
    assert container["env"] == [{"name": "STAGE", "value": "process"}]

    kubectl("delete", KIND, "my-workflow", "-n", namespace)
    wait_for(lambda: pods(namespace, "my-workflow"), lambda p: p == [], 60, "task pods garbage-collected")


def test_diamond_runs_in_dependency_order_within_max_concurrent(operator: Operator, namespace: str) -> None:
    tasks = [
        task("a", delay="1s"),
        task("b", "a", delay="2s"),
        task("c", "a", delay="2s"),
        task("e", "a", delay="2s"),
        task("d", "b", "c", "e", delay="1s"),
    ]
    apply(workflow("diamond", tasks, maxConcurrent=2), namespace)
    wait_for(lambda: obs("diamond", namespace), phase_is("Succeeded"), 90, "the diamond to succeed")
    runs = {
        p["metadata"]["labels"]["workflow.seventh-horizon.io/task"]: interval(p)
        for p in pods(namespace, "diamond")
    }
    assert sorted(runs) == ["a", "b", "c", "d", "e"]
    for child, parents in {"b": "a", "c": "a", "e": "a", "d": "bce"}.items():
        for parent in parents:
            assert runs[child][0] >= runs[parent][1], f"{child} started before {parent} finished: {runs}"
    # at every start, count the pods running then ([start, finish): the second resolution keeps it sound)
    most = max(sum(1 for s, f in runs.values() if s <= start < f) for start, _ in runs.values())
    assert most == 2, f"at most maxConcurrent=2 pods at once, and the limit was used: {runs}"

    # a spec edit reaches tasks not started yet: nothing here, the run is over and pods are immutable
    kubectl("patch", KIND, "diamond", "-n", namespace, "--type=merge", "-p", '{"spec":{"maxConcurrent":3}}')
    time.sleep(2)
    assert len(pods(namespace, "diamond")) == 5
    assert obs("diamond", namespace)["status"]["observedGeneration"] == 2


def test_failed_task_skips_descendants_and_fails_the_workflow(operator: Operator, namespace: str) -> None:
    tasks = [
        task("fetch"),
        task("broken", "fetch", exit=3),
        task("after", "broken"),
        task("last", "after"),
        task("side", "fetch", delay="2s"),
    ]
    apply(workflow("failing", tasks), namespace)
    done = wait_for(lambda: obs("failing", namespace), phase_is("Failed"), 60, "the workflow to fail")
    phases = {t["name"]: t["phase"] for t in done["status"]["tasks"]}
    assert phases == {
        "fetch": "Succeeded",
        "broken": "Failed",
        "after": "Skipped",
        "last": "Skipped",
        "side": "Succeeded",
    }
    broken = task_of(done, "broken")
    assert broken["exitCode"] == 3 and broken["message"] == "exit code 3 (Error)"
    assert task_of(done, "after")["message"] == "dependency broken failed"
    failed = next(c for c in done["status"]["conditions"] if c["type"] == "Failed")
    assert failed["status"] == "True"
    assert failed["message"] == "run 1: task broken failed: exit code 3 (Error); skipped: after, last"
    names = {p["metadata"]["name"] for p in pods(namespace, "failing")}
    assert names == {"failing-1-fetch-1", "failing-1-broken-1", "failing-1-side-1"}, (
        "no pod for skipped tasks"
    )
    events = kubectl_json("get", "events", "-n", namespace, "--field-selector", "involvedObject.name=failing")
    assert any(e["type"] == "Warning" and e["reason"] == "TasksFailed" for e in events["items"])


def test_retry_timeout_and_a_deleted_pod_put_back(operator: Operator, namespace: str) -> None:
    tasks = [
        # attempt 1 carries kwok-exit 1; the test removes it from the spec while attempt 1 runs, so
        # attempt 2 (built from the spec at its start, pods being immutable) succeeds
        task("flaky", delay="3s", exit=1, retries=1, backoff={"duration": "2s"}),
        task("slow", delay="5m", timeout="3s"),
        task("heal", delay="8s"),
    ]
    apply(workflow("resilient", tasks), namespace)
    wait_for(lambda: get("pod", "resilient-1-flaky-1", namespace), describe="flaky's first attempt")
    kubectl(
        "patch", KIND, "resilient", "-n", namespace, "--type=json", "-p",
        json.dumps([{"op": "remove", "path": "/spec/tasks/0/metadata/annotations/troupe.dev~1kwok-exit"}]),
    )  # fmt: skip

    healing = wait_for(
        lambda: get("pod", "resilient-1-heal-1", namespace),
        lambda p: p and p["status"].get("phase") == "Running",
        30,
        "heal's pod running",
    )
    kubectl("delete", "pod", "resilient-1-heal-1", "-n", namespace, "--wait=false")
    wait_for(
        lambda: get("pod", "resilient-1-heal-1", namespace),
        lambda p: p and p["metadata"]["uid"] != healing["metadata"]["uid"],
        30,
        "heal's deleted pod put back",
    )

    done = wait_for(lambda: obs("resilient", namespace), phase_is("Failed", "Succeeded"), 60, "the end")
    flaky = task_of(done, "flaky")
    assert (
        flaky["phase"] == "Succeeded" and flaky["attempts"] == 2 and flaky["podName"] == "resilient-1-flaky-2"
    )
    first = get("pod", "resilient-1-flaky-1", namespace)
    assert first["status"]["phase"] == "Failed", "the failed attempt's pod is kept for its logs"
    assert first["metadata"]["annotations"]["troupe.dev/kwok-exit"] == "1"
    assert (
        "troupe.dev/kwok-exit" not in get("pod", "resilient-1-flaky-2", namespace)["metadata"]["annotations"]
    )

    slow = task_of(done, "slow")
    assert slow["phase"] == "Failed" and slow["message"] == "timed out after 3s (DeadlineExceeded)"
    assert (
        get("pod", "resilient-1-slow-1", namespace) is None
        or wait_for(
            lambda: get("pod", "resilient-1-slow-1", namespace),
            lambda p: p is None,
            30,
            "the timed-out pod deleted",
        )
        is None
    )
    assert task_of(done, "heal")["phase"] == "Succeeded" and task_of(done, "heal")["attempts"] == 1
    assert done["status"]["phase"] == "Failed"


def test_suspend_holds_new_tasks(operator: Operator, namespace: str) -> None:
    apply(workflow("held", [task("first", delay="3s"), task("second", "first")], suspend=True), namespace)
    wait_for(lambda: obs("held", namespace), lambda o: o and o.get("status", {}).get("run") == 1, 30, "run 1")
    time.sleep(2)
    assert pods(namespace, "held") == [], "suspended from the start: nothing starts"
    kubectl("patch", KIND, "held", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    wait_for(lambda: get("pod", "held-1-first-1", namespace), describe="first starting once resumed")
    kubectl("patch", KIND, "held", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    held = wait_for(
        lambda: obs("held", namespace),
        lambda o: o and task_of(o, "first")["phase"] == "Succeeded",
        30,
        "first, already running, to finish",
    )
    suspended = next(c for c in held["status"]["conditions"] if c["type"] == "Suspended")
    assert suspended["status"] == "True"
    time.sleep(3)
    assert task_of(obs("held", namespace), "second")["phase"] == "Pending"
    assert get("pod", "held-1-second-1", namespace) is None
    kubectl("patch", KIND, "held", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    wait_for(lambda: obs("held", namespace), phase_is("Succeeded"), 30, "the resumed workflow to succeed")


BAD_SPECS = [
    ({"tasks": [task("a"), task("a")]}, "Duplicate value"),
    ({"tasks": [task("Build")]}, "should match '^[a-z]([-a-z0-9]*[a-z0-9])?$'"),
    ({"tasks": [task("a", "a")]}, "a task cannot depend on itself"),
    ({"tasks": [task("a")], "maxConcurrent": 0}, "spec.maxConcurrent: Invalid value: 0"),
    (
        {"tasks": [task("a"), task("b", when=[{"task": "a", "phase": "Failed"}])]},
        "when[].task must be one of",
    ),
    ({"tasks": [task("a", timeout="5 minutes")]}, "spec.tasks[0].timeout"),
    ({"tasks": []}, "spec.tasks: Invalid value"),
    ({"tasks": [task("a")], "timeZone": "Europe/Paris"}, "timeZone needs a schedule"),
]


@pytest.mark.parametrize(("spec", "message"), BAD_SPECS, ids=[m for _, m in BAD_SPECS])
def test_bad_input_refused_by_the_api_server(
    operator: Operator, namespace: str, spec: dict[str, Any], message: str
) -> None:
    body = {
        "apiVersion": "workflow.seventh-horizon.io/v1alpha1",
        "kind": "Observatory",
        "metadata": {"name": "bad"},
        "spec": spec,
    }
    proc = kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(body), check=False)
    assert proc.returncode != 0, proc.stdout
    assert message in proc.stderr, proc.stderr


def test_cycles_unknown_dependencies_and_bad_schedules_end_failed(operator: Operator, namespace: str) -> None:
    cases = {
        "cycle": (workflow("cycle", [task("a", "c"), task("b", "a"), task("c", "b"), task("ok")]),
                  "spec.tasks: dependency cycle a -> c -> b -> a; remove one of these dependencies"),
        "unknown": (workflow("unknown", [task("a"), task("b", "a", "ghost")]),
                    "spec.tasks[b].dependencies: unknown task 'ghost' (tasks are: a, b)"),
        "schedule": (workflow("schedule", [task("a")], schedule="61 * * * *"),
                     "spec.schedule: minute: 61 is out of range 0-59"),
        "zone": (workflow("zone", [task("a")], schedule="@hourly", timeZone="Mars/Olympus"),
                 "unknown time zone 'Mars/Olympus'"),
    }  # fmt: skip
    apply([body for body, _ in cases.values()], namespace)
    for name, (_, message) in cases.items():
        failed = wait_for(lambda n=name: obs(n, namespace), phase_is("Failed"), 30, f"{name} Failed")
        ready = next(c for c in failed["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
        assert message in ready["message"], ready["message"]
    time.sleep(1)
    assert kubectl_json("get", "pods", "-n", namespace)["items"] == [], "nothing started for a bad workflow"
    # fixing the spec brings the workflow back
    apply(workflow("cycle", [task("a"), task("b", "a"), task("c", "b"), task("ok")]), namespace)
    wait_for(lambda: obs("cycle", namespace), phase_is("Succeeded"), 60, "the fixed workflow to succeed")


def test_examples_are_accepted(operator: Operator, namespace: str) -> None:
    for path in sorted(Path(EXAMPLES).glob("*.yaml")):
        kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(path))


def test_cron_schedule_produces_numbered_runs(cron_namespace: str) -> None:
    namespace = cron_namespace
    done = wait_for(
        lambda: obs("every-minute", namespace),
        lambda o: o and (o.get("status") or {}).get("run") == 2 and o["status"].get("phase") == "Succeeded",
        150,
        "run 2 to succeed",
        interval=2,
    )
    status = done["status"]
    assert [h["run"] for h in status["history"]] == [2, 1]
    assert all(h["phase"] == "Succeeded" and h["succeeded"] == 2 for h in status["history"])
    assert (
        status["scheduledTime"].endswith(":00.000Z") and status["lastScheduleTime"] == status["scheduledTime"]
    )
    assert ts(status["nextScheduleTime"]) > ts(status["lastScheduleTime"])
    runs = sorted(
        {p["metadata"]["labels"]["workflow.seventh-horizon.io/run"] for p in pods(namespace, "every-minute")}
    )
    assert runs == ["1", "2"]
    assert get("pod", "every-minute-2-tock-1", namespace) is not None
