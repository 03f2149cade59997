"""The scheduler through the pure plan: dependency order, concurrency, failures, retries, timeouts."""

from __future__ import annotations

import pytest

from troupe_observatory.models import Task
from troupe_observatory.scheduler import backoff_delay, stamp


def test_diamond_runs_in_dependency_order(sim, diamond):
    s = sim(diamond)
    s.settle()
    assert s.running() == ["a"]
    assert s.phases() == {"a": "Running", "b": "Pending", "c": "Pending", "d": "Pending"}
    assert s.status["phase"] == "Running"
    assert s.status["progress"] == "0/4"
    s.advance(1)
    s.finish("a")
    s.settle()
    assert s.running() == ["b", "c"]
    s.finish("b")
    s.settle()
    assert s.running() == ["c"], "d waits for both of its dependencies"
    s.finish("c")
    s.settle()
    assert s.running() == ["d"]
    s.finish("d")
    s.settle()
    assert s.status["phase"] == "Succeeded"
    assert s.status["progress"] == "4/4"
    assert s.status["completionTime"]
    assert s.condition("Completed")["status"] == "True"
    assert s.condition("Ready")["status"] == "True"
    assert s.status["history"][0]["run"] == 1 and s.status["history"][0]["succeeded"] == 4
    order = [name for _, name in s.created_log]
    assert order == ["wf-1-a-1", "wf-1-b-1", "wf-1-c-1", "wf-1-d-1"]
    assert len(s.pods) == 4, "finished pods are kept for their logs"


def test_task_record_fields(sim, diamond):
    s = sim(diamond)
    s.settle()
    rec = s.task("a")
    assert rec == {
        "name": "a",
        "phase": "Running",
        "attempts": 1,
        "podName": "wf-1-a-1",
        "startedAt": stamp(s.now),
    }
    assert s.task("b") == {"name": "b", "phase": "Pending"}
    s.advance(2)
    s.finish("a")
    s.settle()
    rec = s.task("a")
    assert rec["phase"] == "Succeeded" and rec["exitCode"] == 0
    assert rec["finishedAt"] == "2030-01-01T12:00:02.000Z"


def test_max_concurrent_is_honoured(sim, mk_task):
    spec = {"tasks": [mk_task(f"t{i}") for i in range(5)], "maxConcurrent": 2}
    s = sim(spec)
    s.settle()
    assert s.running() == ["t0", "t1"]
    s.finish("t1")
    s.settle()
    assert s.running() == ["t0", "t2"]
    for name in ["t0", "t2"]:
        s.finish(name)
    s.settle()
    assert s.running() == ["t3", "t4"]
    s.finish("t3"), s.finish("t4")
    s.settle()
    assert s.status["phase"] == "Succeeded"


def test_unlimited_without_max_concurrent(sim, mk_task):
    s = sim({"tasks": [mk_task(f"t{i}") for i in range(20)]})
    s.settle()
    assert len(s.running()) == 20


def test_failure_skips_descendants_and_independent_branch_finishes(sim, mk_task):
    spec = {
        "tasks": [
            mk_task("a"),
            mk_task("b", "a"),
            mk_task("c", "b"),
            mk_task("x"),
            mk_task("y", "x"),
        ]
    }
    s = sim(spec)
    s.settle()
    assert s.running() == ["a", "x"]
    s.finish("a", exit_code=3)
    s.settle()
    assert s.phases()["a"] == "Failed"
    assert s.task("a")["exitCode"] == 3
    assert s.task("a")["message"] == "exit code 3 (Error)"
    assert s.phases()["b"] == "Skipped" and s.task("b")["message"] == "dependency a failed"
    assert s.phases()["c"] == "Skipped" and s.task("c")["message"] == "dependency b was skipped"
    assert s.status["phase"] == "Running", "the independent branch is still running"
    s.finish("x")
    s.settle()
    assert s.running() == ["y"], "an independent branch keeps starting tasks without failFast"
    s.finish("y")
    s.settle()
    assert s.status["phase"] == "Failed"
    assert s.condition("Failed")["status"] == "True"
    assert "task a failed: exit code 3 (Error); skipped: b, c" in s.condition("Failed")["message"]
    assert s.condition("Ready")["status"] == "False"
    assert s.status["history"][0] == {
        "run": 1,
        "phase": "Failed",
        "startTime": s.status["startTime"],
        "completionTime": s.status["completionTime"],
        "succeeded": 2,
        "failed": 1,
        "skipped": 2,
        "message": "task a failed: exit code 3 (Error); skipped: b, c",
    }


def test_fail_fast_starts_nothing_more(sim, mk_task):
    spec = {
        "tasks": [mk_task("a"), mk_task("x"), mk_task("y", "x"), mk_task("z")],
        "failFast": True,
        "maxConcurrent": 2,
    }
    s = sim(spec)
    s.settle()
    assert s.running() == ["a", "x"]
    s.finish("a", exit_code=1)
    s.settle()
    assert s.phases() == {"a": "Failed", "x": "Running", "y": "Skipped", "z": "Skipped"}
    assert s.task("z")["message"] == "failFast: task a failed"
    assert s.status["phase"] == "Running", "running tasks finish"
    s.finish("x")
    s.settle()
    assert s.status["phase"] == "Failed"
    assert s.running() == []


def test_retry_succeeds_on_second_attempt_after_backoff(sim, mk_task):
    spec = {
        "tasks": [
            mk_task("flaky", retries=2, backoff={"duration": "10s", "factor": 3, "maxDuration": "1m"}),
            mk_task("next", "flaky"),
        ]
    }
    s = sim(spec)
    s.settle()
    s.advance(1)
    s.finish("flaky", exit_code=1)
    plan = s.settle()
    rec = s.task("flaky")
    assert rec["phase"] == "Pending" and rec["attempts"] == 1
    assert rec["retryAt"] == "2030-01-01T12:00:11.000Z"
    assert rec["message"] == "attempt 1 of 3 failed: exit code 1 (Error)"
    assert plan.status.requeue_after == pytest.approx(10)
    s.advance(5)
    s.settle()
    assert s.running() == [], "no new attempt before the backoff ends"
    s.advance(5)
    s.settle()
    assert s.running() == ["flaky"]
    assert s.task("flaky")["attempts"] == 2 and s.task("flaky")["podName"] == "wf-1-flaky-2"
    assert s.task("flaky")["message"].startswith("attempt 1 of 3 failed")
    assert "wf-1-flaky-1" in s.pods, "the failed attempt's pod stays for its logs"
    s.finish("flaky", attempt=2)
    s.settle()
    assert s.task("flaky")["phase"] == "Succeeded" and "message" not in s.task("flaky")
    assert s.running() == ["next"]


def test_retries_exhausted_fail_the_task(sim, mk_task):
    s = sim({"tasks": [mk_task("f", retries=1, backoff={"duration": "1s"})]})
    s.settle()
    s.finish("f", exit_code=2)
    s.settle()
    s.advance(1)
    s.settle()
    s.finish("f", exit_code=2, attempt=2)
    s.settle()
    assert s.task("f")["phase"] == "Failed"
    assert s.task("f")["message"] == "attempt 2 of 2: exit code 2 (Error)"
    assert s.status["phase"] == "Failed"


@pytest.mark.parametrize(
    ("backoff", "attempt", "seconds"),
    [
        (None, 1, 10),
        (None, 2, 20),
        (None, 10, 600),
        ({"duration": "1s", "factor": 1}, 5, 1),
        ({"duration": "5s", "factor": 10, "maxDuration": "1h"}, 3, 500),
    ],
)
def test_backoff_delay(backoff, attempt, seconds):
    task = Task.model_validate({"name": "t", "image": "i", **({"backoff": backoff} if backoff else {})})
    assert backoff_delay(task, attempt).total_seconds() == seconds


def test_timeout_fails_the_task_and_deletes_its_pod(sim, mk_task):
    s = sim({"tasks": [mk_task("slow", timeout="30s"), mk_task("after", "slow")]})
    plan = s.settle()
    assert s.pod("slow")["spec"]["activeDeadlineSeconds"] == 30
    assert plan.status.requeue_after == pytest.approx(30)
    s.start("slow")
    s.advance(29)
    s.settle()
    assert s.task("slow")["phase"] == "Running"
    s.advance(1)
    s.reconcile()
    assert s.task("slow")["phase"] == "Failed"
    assert s.task("slow")["message"] == "timed out after 30s (DeadlineExceeded)"
    assert "wf-1-slow-1" in s.pods, "deleted only once the timeout is on record"
    s.reconcile()
    assert "wf-1-slow-1" not in s.pods
    assert s.phases()["after"] == "Skipped"
    assert s.status["phase"] == "Failed"


def test_timeout_with_retry_starts_a_new_attempt(sim, mk_task):
    s = sim({"tasks": [mk_task("slow", timeout="10s", retries=1, backoff={"duration": "1s"})]})
    s.settle()
    s.advance(10)
    s.settle()
    assert s.task("slow")["phase"] == "Pending"
    s.advance(1)
    s.settle()
    assert s.task("slow")["attempts"] == 2 and s.running() == ["slow"]


def test_kubelet_deadline_exceeded_is_a_failure(sim, mk_task):
    s = sim({"tasks": [mk_task("slow", timeout="1h")]})
    s.settle()
    pod = s.pod("slow")
    pod["status"] = {
        "phase": "Failed",
        "reason": "DeadlineExceeded",
        "message": "Pod was active on the node longer than the specified deadline",
    }
    s.settle()
    assert (
        s.task("slow")["message"]
        == "DeadlineExceeded: Pod was active on the node longer than the specified deadline"
    )


def test_when_runs_a_failure_handler_and_skips_the_success_path(sim, mk_task):
    spec = {
        "tasks": [
            mk_task("test"),
            mk_task("deploy", "test"),
            mk_task("alert", "test", when=[{"task": "test", "phase": "Failed"}]),
        ]
    }
    s = sim(spec)
    s.settle()
    s.finish("test", exit_code=1)
    s.settle()
    assert s.phases() == {"test": "Failed", "deploy": "Skipped", "alert": "Running"}
    s.finish("alert")
    s.settle()
    assert s.status["phase"] == "Failed", "a handled failure still fails the run"


def test_when_not_met_skips(sim, mk_task):
    spec = {
        "tasks": [
            mk_task("test"),
            mk_task("alert", "test", when=[{"task": "test", "phase": "Failed"}]),
            mk_task("after", "alert"),
        ]
    }
    s = sim(spec)
    s.settle()
    s.finish("test")
    s.settle()
    assert s.task("alert")["message"] == "when: test ended Succeeded, not Failed"
    assert s.phases() == {"test": "Succeeded", "alert": "Skipped", "after": "Skipped"}
    assert s.status["phase"] == "Succeeded", "skipped tasks do not fail a run"


def test_when_on_skipped(sim, mk_task):
    spec = {
        "tasks": [
            mk_task("a"),
            mk_task("b", "a"),
            mk_task("cleanup", "b", when=[{"task": "b", "phase": "Skipped"}]),
        ]
    }
    s = sim(spec)
    s.settle()
    s.finish("a", exit_code=1)
    s.settle()
    assert s.phases() == {"a": "Failed", "b": "Skipped", "cleanup": "Running"}


def test_suspend_holds_new_tasks_running_ones_finish(sim, diamond):
    s = sim(diamond)
    s.settle()
    s.spec_dict = {**diamond, "suspend": True}
    s.settle()
    assert s.condition("Suspended")["status"] == "True"
    s.finish("a")
    s.settle()
    assert s.phases()["a"] == "Succeeded"
    assert s.running() == [], "no new task while suspended"
    s.spec_dict = diamond
    s.settle()
    assert s.running() == ["b", "c"]
    assert s.condition("Suspended")["status"] == "False"


def test_suspended_from_the_start(sim, diamond):
    s = sim({**diamond, "suspend": True})
    s.settle()
    assert s.pods == {}
    assert s.status["phase"] == "Pending" and s.status["run"] == 1


def test_deleted_running_pod_is_put_back(sim, diamond):
    s = sim(diamond)
    s.settle()
    del s.pods["wf-1-a-1"]
    s.settle()
    assert "wf-1-a-1" in s.pods
    assert s.task("a")["attempts"] == 1
    assert [n for _, n in s.created_log].count("wf-1-a-1") == 2


def test_deleted_finished_pod_is_not_rerun(sim, diamond):
    s = sim(diamond)
    s.settle()
    s.finish("a")
    s.settle()
    del s.pods["wf-1-a-1"]
    s.settle()
    assert "wf-1-a-1" not in s.pods
    assert s.phases()["a"] == "Succeeded"


def test_reconcile_is_idempotent(sim, diamond):
    s = sim(diamond)
    s.settle()
    s.finish("a")
    s.settle()
    status, pods = dict(s.status), {k: dict(v) for k, v in s.pods.items()}
    plan = s.reconcile()
    assert plan.created == []
    assert s.status == status and s.pods == pods


def test_kept_pods_are_the_observed_pods(sim, diamond):
    """Returned as observed, which the core keeps as they are (never rebuilt from a spec edited since)."""
    s = sim(diamond)
    s.settle()
    observed = s.pods["wf-1-a-1"]
    plan = s.reconcile()
    kept = next(p for p in plan.pods if p["metadata"]["name"] == "wf-1-a-1")
    assert kept is observed


def test_spec_edit_reaches_only_attempts_started_after_it(sim, mk_task):
    spec = {
        "tasks": [
            mk_task(
                "a",
                retries=1,
                backoff={"duration": "1s"},
                metadata={"annotations": {"troupe.dev/kwok-exit": "1"}},
            )
        ]
    }
    s = sim(spec)
    s.settle()
    s.spec_dict = {"tasks": [mk_task("a", retries=1, backoff={"duration": "1s"})]}
    s.settle()
    assert s.pod("a")["metadata"]["annotations"] == {"troupe.dev/kwok-exit": "1"}, "pods are never rebuilt"
    s.finish("a", exit_code=1)
    s.settle()
    s.advance(1)
    s.settle()
    assert "annotations" not in s.pod("a", attempt=2)["metadata"]


def test_tasks_added_and_removed_while_running(sim, mk_task):
    s = sim({"tasks": [mk_task("a"), mk_task("b", "a")]})
    s.settle()
    s.spec_dict = {"tasks": [mk_task("a"), mk_task("c", "a")]}
    s.settle()
    assert s.phases() == {"a": "Running", "c": "Pending"}
    s.finish("a")
    s.settle()
    assert s.running() == ["c"]


def test_status_of_1000_tasks_stays_small(sim, mk_task):
    import json

    tasks = [mk_task(f"task-{i:04d}", *([f"task-{i - 1:04d}"] if i % 10 else [])) for i in range(1000)]
    s = sim({"tasks": tasks})
    s.settle()
    for _ in range(10):
        for name in s.running():
            s.finish(name, exit_code=0)
        s.advance(1)
        s.settle()
    assert s.status["phase"] == "Succeeded"
    size = len(json.dumps(s.status, separators=(",", ":")))
    print(f"status of a finished 1,000-task workflow: {size} bytes")
    assert size < 300 * 1024, f"{size} bytes"
    assert size < 1.5 * 1024 * 1024 / 5
