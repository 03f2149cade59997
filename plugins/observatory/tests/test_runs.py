"""Runs through the pure plan: numbering, concurrency policies, history, pod garbage collection."""

from __future__ import annotations

import pytest


def cron_spec(mk_task, **extra):
    return {"tasks": [mk_task("a"), mk_task("b", "a")], "schedule": "* * * * *", **extra}


def test_no_run_before_the_first_tick(sim, mk_task):
    s = sim(cron_spec(mk_task))
    plan = s.settle()
    assert s.pods == {} and s.status["phase"] == "Pending" and "run" not in s.status
    assert s.status["nextScheduleTime"] == "2030-01-01T12:01:00.000Z"
    assert plan.status.requeue_after == pytest.approx(60.2)
    assert s.condition("Ready")["message"] == "no run has started yet"
    assert s.condition("Scheduled")["reason"] == "OnSchedule"


def run_to_end(s):
    s.finish("a", run=s.status["run"])
    s.settle()
    s.finish("b", run=s.status["run"])
    s.settle()


def test_each_tick_starts_a_numbered_run(sim, mk_task):
    s = sim(cron_spec(mk_task, historyLimit=2))
    s.advance(60.2)
    s.settle()
    assert s.status["run"] == 1 and s.status["scheduledTime"] == "2030-01-01T12:01:00.000Z"
    assert s.pod("a")["metadata"]["labels"]["workflow.seventh-horizon.io/run"] == "1"
    run_to_end(s)
    assert s.status["phase"] == "Succeeded"
    for expected in (2, 3):
        s.advance(60)
        s.settle()
        assert s.status["run"] == expected and s.status["phase"] == "Running"
        assert s.phases() == {"a": "Running", "b": "Pending"}, "a new run starts from scratch"
        run_to_end(s)
    assert [h["run"] for h in s.status["history"]] == [3, 2]
    assert sorted(s.pods) == ["wf-2-a-1", "wf-2-b-1", "wf-3-a-1", "wf-3-b-1"], "run 1 left the history"


def test_allow_runs_side_by_side(sim, mk_task):
    s = sim(cron_spec(mk_task))
    s.advance(60.2)
    s.settle()
    s.advance(60)
    s.settle()
    assert s.status["run"] == 2
    assert [r["run"] for r in s.status["activeRuns"]] == [1]
    assert sorted(s.pods) == ["wf-1-a-1", "wf-2-a-1"]
    s.finish("a", run=1)
    s.settle()
    s.finish("b", run=1)
    s.settle()
    assert "activeRuns" not in s.status
    assert s.status["history"][0]["run"] == 1 and s.status["phase"] == "Running"


def test_forbid_waits_for_the_active_run(sim, mk_task):
    s = sim(cron_spec(mk_task, concurrencyPolicy="Forbid"))
    s.advance(60.2)
    s.settle()
    s.advance(60)
    s.settle()
    assert s.status["run"] == 1 and "waits" in s.condition("Scheduled")["message"]
    s.advance(10)
    run_to_end(s)
    s.settle()
    assert s.status["run"] == 2, "the held tick (10s late) runs once the active run ended"
    assert s.status["scheduledTime"] == "2030-01-01T12:02:00.000Z"


def test_replace_cancels_the_active_run(sim, mk_task):
    s = sim(cron_spec(mk_task, concurrencyPolicy="Replace"))
    s.advance(60.2)
    s.settle()
    s.advance(60)
    s.reconcile()
    assert s.status["run"] == 2
    summary = s.status["history"][0]
    assert summary == {**summary, "run": 1, "phase": "Failed", "message": "replaced by run 2"}
    assert "wf-1-a-1" in s.pods, "deleted once the replacement is on record"
    s.reconcile()
    assert "wf-1-a-1" not in s.pods
    assert "activeRuns" not in s.status


def test_catch_up_after_an_outage(sim, mk_task):
    s = sim(cron_spec(mk_task, catchUp={"policy": "RunOnce"}))
    s.advance(60.2)
    s.settle()
    run_to_end(s)
    s.advance(600)  # the operator was away: 10 ticks, the last 0.2s ago
    s.settle()
    assert s.status["run"] == 2
    scheduled = s.condition("Scheduled")
    assert scheduled["reason"] == "TicksSkipped"
    assert scheduled["message"] == "9 ticks missed, one run for them (catchUp RunOnce)"


@pytest.mark.parametrize(
    ("strategy", "kept"),
    [
        ("Never", ["wf-1-a-1", "wf-1-b-1", "wf-1-c-1"]),
        ("OnPodSuccess", ["wf-1-b-1"]),
        ("OnPodCompletion", []),
        ("OnWorkflowSuccess", ["wf-1-a-1", "wf-1-b-1", "wf-1-c-1"]),  # the run failed
        ("OnWorkflowCompletion", []),
    ],
)
def test_pod_gc(sim, mk_task, strategy, kept):
    s = sim({"tasks": [mk_task("a"), mk_task("b"), mk_task("c")], "podGC": {"strategy": strategy}})
    s.settle()
    s.finish("a")
    s.finish("b", exit_code=1)
    s.finish("c")
    s.settle()
    assert s.status["phase"] == "Failed"
    assert sorted(s.pods) == kept
    assert s.phases() == {"a": "Succeeded", "b": "Failed", "c": "Succeeded"}, "GC never changes results"


def test_on_workflow_success_deletes_a_succeeded_runs_pods(sim, mk_task):
    s = sim({"tasks": [mk_task("a")], "podGC": {"strategy": "OnWorkflowSuccess"}})
    s.settle()
    s.finish("a")
    s.settle()
    assert s.pods == {} and s.status["phase"] == "Succeeded"


def test_pods_of_other_workflows_or_without_labels_are_left_alone(sim, diamond):
    s = sim(diamond)
    stranger = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "x", "labels": {}},
        "status": {"phase": "Running"},
    }
    s.pods["x"] = stranger
    s.settle()
    assert "x" in s.pods
