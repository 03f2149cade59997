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
TASK = "workflow.seventh-horizon.io/task"
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

    pod = next(p for p in pods(namespace, "my-workflow") if p["metadata"]["labels"][TASK] == "task-2")
    assert pod["metadata"]["name"] == task_of(done, "task-2")["podName"]
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


def bad(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return workflow(name, spec.pop("tasks", [task("a")]), **spec)


def chain(count: int) -> list[dict[str, Any]]:
    return [task(f"t{i}", *([f"t{i - 1}"] if i else [])) for i in range(count)]


#: Refused by the API server: (case, spec, what its message must hold: the field, and what is wrong).
REFUSED: list[tuple[str, dict[str, Any], list[str]]] = [
    # wrong types
    ("tasks-string", {"tasks": "a"}, ["spec.tasks", "must be of type array"]),
    ("retries-word", {"tasks": [task("a", retries="three")]}, ["spec.tasks[0].retries", "integer"]),
    ("timeout-number", {"tasks": [task("a", timeout=30)]}, ["spec.tasks[0].timeout", "string"]),
    ("suspend-word", {"suspend": "yes"}, ["spec.suspend", "boolean"]),
    ("image-missing", {"tasks": [{"name": "a"}]}, ["spec.tasks[0].image", "Required value"]),
    ("env-bogus-source", {"tasks": [task("a", env=[{"name": "X", "valueFrom": {"bogus": {}}}])]},
     ['unknown field "spec.tasks[0].env[0].valueFrom.bogus"']),
    ("env-two-sources", {"tasks": [task("a", env=[{"name": "X", "valueFrom": {
        "fieldRef": {"fieldPath": "metadata.name"}, "secretKeyRef": {"name": "s", "key": "k"}}}])]},
     ["spec.tasks[0].env[0].valueFrom", "exactly one of"]),
    ("env-duplicate", {"tasks": [task("a", env=[{"name": "X", "value": "1"}, {"name": "X"}])]},
     ["spec.tasks[0].env[1]", "Duplicate value"]),
    # huge and tiny values
    ("timeout-huge", {"tasks": [task("a", timeout="99999999999999d")]},
     ["spec.tasks[0].timeout", "should match"]),
    ("timeout-words", {"tasks": [task("a", timeout="5 minutes")]}, ["spec.tasks[0].timeout", "should match"]),
    ("backoff-huge", {"tasks": [task("a", retries=1, backoff={"duration": "1e999s"})]},
     ["spec.tasks[0].backoff.duration", "should match"]),
    ("factor-zero", {"tasks": [task("a", retries=1, backoff={"factor": 0})]},
     ["spec.tasks[0].backoff.factor", "greater than or equal to 1"]),
    ("retries-huge", {"tasks": [task("a", retries=10**30)]}, ["spec.tasks[0].retries"]),
    ("deadline-huge", {"startingDeadlineSeconds": 10**12},
     ["spec.startingDeadlineSeconds", "less than or equal to 3153600000"]),
    ("deadline-negative", {"startingDeadlineSeconds": -1},
     ["spec.startingDeadlineSeconds", "greater than or equal to 0"]),
    ("history-zero", {"historyLimit": 0}, ["spec.historyLimit", "greater than or equal to 1"]),
    ("catch-up-huge", {"catchUp": {"policy": "RunAll", "limit": 1000}},
     ["spec.catchUp.limit", "less than or equal to 100"]),
    ("concurrent-zero", {"maxConcurrent": 0}, ["spec.maxConcurrent", "greater than or equal to 1"]),
    # names and graphs
    ("dup-task", {"tasks": [task("a"), task("a")]}, ["spec.tasks[1]", "Duplicate value"]),
    ("no-tasks", {"tasks": []}, ["spec.tasks", "should have at least 1 items"]),
    ("upper-name", {"tasks": [task("Build")]}, ["spec.tasks[0].name", "should match"]),
    ("unicode-name", {"tasks": [task("ünï")]}, ["spec.tasks[0].name", "should match"]),
    ("long-name", {"tasks": [task("a" * 64)]}, ["spec.tasks[0].name", "may not be more than 63"]),
    ("self-dependency", {"tasks": [task("a", "a")]}, ["spec.tasks[0]", "a task cannot depend on itself"]),
    ("when-not-dependency", {"tasks": [task("a"), task("b", when=[{"task": "a", "phase": "Failed"}])]},
     ["spec.tasks[1]", "when[].task must be one of"]),
    ("too-many-dependencies", {"tasks": [task("x", *(f"d{i}" for i in range(33)))]},
     ["spec.tasks[0].dependencies", "must have at most 32 items"]),
    ("too-many-tasks", {"tasks": chain(1001)}, ["spec.tasks", "must have at most 1000 items"]),
    # schedules
    ("six-fields", {"schedule": "0 * * * * *"}, ["spec.schedule", "should match"]),
    ("zone-without-schedule", {"timeZone": "Europe/Paris"}, ["timeZone needs a schedule"]),
    ("zone-empty", {"schedule": "@hourly", "timeZone": ""}, ["spec.timeZone", "at least 1 chars"]),
]  # fmt: skip


def test_bad_input_refused_by_the_api_server(operator: Operator, namespace: str) -> None:
    wrong = []
    for name, spec, texts in REFUSED:
        body = yaml.safe_dump(bad(f"bad-{name}", dict(spec)))
        proc = kubectl("apply", "-n", namespace, "-f", "-", input=body, check=False)
        if proc.returncode == 0 or not all(t in proc.stderr for t in texts):
            wrong.append(f"{name}: rc={proc.returncode} {proc.stderr.strip()[:600]}")
    for name, text in (("w" * 254, "must be no more than 253 characters"), ("w\u00f6rk", "RFC 1123")):
        body = yaml.safe_dump(workflow(name, [task("a")]))
        proc = kubectl("apply", "-n", namespace, "-f", "-", input=body, check=False)
        if "metadata.name" not in proc.stderr or text not in proc.stderr:
            wrong.append(f"workflow name {name!r}: {proc.stderr.strip()[:600]}")
    assert not wrong, "\n".join(wrong)
    assert kubectl_json("get", KIND, "-n", namespace)["items"] == []


#: Admitted by the API server, refused by the operator: (case, spec, what the Ready condition says).
FAILED: list[tuple[str, dict[str, Any], str]] = [
    ("cycle", {"tasks": [task("a", "c"), task("b", "a"), task("c", "b"), task("ok")]},
     "spec.tasks: dependency cycle a -> c -> b -> a; remove one of these dependencies"),
    ("unknown", {"tasks": [task("a"), task("b", "a", "ghost")]},
     "spec.tasks[b].dependencies: unknown task 'ghost' (tasks are: a, b)"),
    ("unicode-dependency", {"tasks": [task("a", "\u00fc")]}, "unknown task '\u00fc'"),
    ("timeout-century", {"tasks": [task("a", timeout="36501d")]},
     "spec.tasks.0.timeout: Value error, duration '36501d' is longer than the maximum of 36500d"),
    ("timeout-past-int32", {"tasks": [task("a", timeout="24856d")]},
     "spec.tasks.0.timeout: Value error, timeout '24856d' is longer than a pod's activeDeadlineSeconds"),
    ("timeout-zero", {"tasks": [task("a", timeout="0s")]},
     "spec.tasks.0.timeout: Value error, timeout '0s' ends every attempt before it starts"),
    ("backoff-century", {"tasks": [task("a", retries=1, backoff={"maxDuration": "999999999d"})]},
     "spec.tasks.0.backoff.maxDuration: Value error"),
    ("quantity", {"tasks": [task("a", resources={"requests": {"cpu": "lots"}})]},
     "spec.tasks.0.resources.requests.cpu: Value error, 'lots' is not a quantity"),
    ("label-value", {"tasks": [task("a", metadata={"labels": {"team": "a b"}})]},
     "spec.tasks.0.metadata.labels: Value error, label team: 'a b' is not a valid label value"),
    ("minute-60", {"schedule": "60 * * * *"}, "spec.schedule: minute: 60 is out of range 0-59"),
    ("minute-61", {"schedule": "61 * * * *"}, "spec.schedule: minute: 61 is out of range 0-59"),
    ("february-31", {"schedule": "* * 31 2 *"}, "spec.schedule: '* * 31 2 *' never fires (no such day)"),
    ("reboot", {"schedule": "@reboot"}, "spec.schedule: unknown macro '@reboot'"),
    ("superscript", {"schedule": "\u00b2 * * * *"}, "spec.schedule: minute: '\u00b2' is not a number"),
    ("mars", {"schedule": "@hourly", "timeZone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
    ("utc-plus-1", {"schedule": "@hourly", "timeZone": "UTC+1"}, "a fixed offset is Etc/GMT-1 for UTC+1"),
]  # fmt: skip


def test_bad_input_ends_failed_saying_what_to_fix(operator: Operator, namespace: str) -> None:
    seen_before = len(operator.log())
    apply([bad(name, dict(spec)) for name, spec, _ in FAILED], namespace)
    # a pod the API server refuses (requests above limits): the core's ApplyFailed names the pod
    resources = {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}
    apply(workflow("bad-pod", [task("a", resources=resources)]), namespace)
    wrong = []
    for name, _, message in FAILED:
        failed = wait_for(lambda n=name: obs(n, namespace), phase_is("Failed"), 30, f"{name} Failed")
        ready = next(c for c in failed["status"]["conditions"] if c["type"] == "Ready")
        if (ready["status"], ready["reason"]) != ("False", "InvalidSpec") or message not in ready["message"]:
            wrong.append(f"{name}: {ready}")
    refused = wait_for(lambda: obs("bad-pod", namespace), phase_is("Failed"), 30, "bad-pod Failed")
    ready = next(c for c in refused["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ApplyFailed" and "bad-pod-1-a-1" in ready["message"], ready
    assert "spec.containers[0].resources.requests" in ready["message"], ready
    assert not wrong, "\n".join(wrong)
    time.sleep(2)
    assert kubectl_json("get", "pods", "-n", namespace)["items"] == [], "nothing started for a bad workflow"
    log = operator.log()[seen_before:]
    assert "Traceback" not in log, log
    loops = {n: log.count(f"{namespace}/{n} failed:") for n in [*(n for n, _, _ in FAILED), "bad-pod"]}
    assert all(1 <= count <= 4 for count in loops.values()), f"failed once, not in a loop: {loops}"
    # fixing the spec brings the workflow back
    apply(workflow("cycle", [task("a"), task("b", "a"), task("c", "b"), task("ok")]), namespace)
    wait_for(lambda: obs("cycle", namespace), phase_is("Succeeded"), 60, "the fixed workflow to succeed")


def test_odd_but_valid_input_runs(operator: Operator, namespace: str) -> None:
    seen_before = len(operator.log())
    century, longest_timeout = "36500d", "24855d"
    apply([
        workflow("huge", [
            task("slow", timeout=longest_timeout),
            task("flaky", exit=1, retries=10,
                 backoff={"duration": century, "factor": 10, "maxDuration": century}),
        ]),
        workflow("chain", chain(1000), suspend=True),
        workflow("graph", [task(f"t{i}", *([f"t{i // 2}"] if i else [])) for i in range(1000)], suspend=True),
        workflow("dst-gap", [task("a")], schedule="30 2 * * *", timeZone="Europe/Paris"),
        # each pair used to share every pod: pc-1-x-1-q-1, team-x-1-a-1 (not "y": YAML 1.1 reads it as true)
        workflow("pc", [task("x-1-q")]), workflow("pc-1-x", [task("q")]),
        workflow("team.x", [task("a")]), workflow("team-x", [task("a")]),
    ], namespace)  # fmt: skip

    huge = wait_for(
        lambda: obs("huge", namespace),
        lambda o: o and task_of(o, "slow")["phase"] == "Succeeded" and task_of(o, "flaky").get("retryAt"),
        60,
        "huge: slow done, flaky waiting a century",
    )
    flaky = task_of(huge, "flaky")
    assert flaky["phase"] == "Pending" and ts(flaky["retryAt"]).year >= 2100, flaky
    assert huge["status"]["phase"] == "Running"
    slow_pod = next(p for p in pods(namespace, "huge") if p["metadata"]["labels"][TASK] == "slow")
    assert slow_pod["spec"]["activeDeadlineSeconds"] == 24855 * 86400

    for name in ("chain", "graph"):
        held = wait_for(lambda n=name: obs(n, namespace), lambda o: o and o.get("status", {}).get("run") == 1,
                        60, f"{name}: run 1 held")  # fmt: skip
        assert held["status"]["progress"] == "0/1000" and len(held["status"]["tasks"]) == 1000
    dst = wait_for(
        lambda: obs("dst-gap", namespace),
        lambda o: o and o.get("status", {}).get("nextScheduleTime"),
        30,
        "dst-gap scheduled",
    )
    assert next(c for c in dst["status"]["conditions"] if c["type"] == "Ready")["status"] == "True"

    for name in ("pc", "pc-1-x", "team.x", "team-x"):
        wait_for(lambda n=name: obs(n, namespace), phase_is("Succeeded"), 60, f"{name} Succeeded")
    owners: dict[str, str] = {}
    for pod in kubectl_json("get", "pods", "-n", namespace)["items"]:
        owner = pod["metadata"]["ownerReferences"][0]["name"]
        assert owners.setdefault(pod["metadata"]["name"], owner) == owner
        if owner in ("pc", "pc-1-x", "team.x", "team-x"):
            assert pod["status"]["phase"] == "Succeeded", pod["metadata"]["name"]
    per_owner = sorted(o for o in owners.values() if o in ("pc", "pc-1-x", "team.x", "team-x"))
    assert per_owner == ["pc", "pc-1-x", "team-x", "team.x"], owners
    events = kubectl_json("get", "events", "-n", namespace)["items"]
    assert not [e for e in events if e.get("reason") in ("NameConflict", "ApplyFailed")], "no clash at all"
    log = operator.log()[seen_before:]
    assert "Traceback" not in log and " failed:" not in log, log


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
