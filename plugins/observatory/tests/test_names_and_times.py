"""Data safety: pod names that never collide, times that never overflow, records that agree with pods."""

from __future__ import annotations

import itertools
import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from troupe import OperatorMetrics, ReconcileContext
from troupe_observatory import plugin
from troupe_observatory.metrics import TaskMetrics, observe
from troupe_observatory.models import OBSERVATORY, ObservatorySpec, Task
from troupe_observatory.pods import (
    ATTEMPT_LABEL,
    RUN_LABEL,
    TASK_LABEL,
    WORKFLOW_LABEL,
    build_pod,
    pod_name,
    shared_pod_names,
)
from troupe_observatory.scheduler import END_OF_TIME, backoff_delay, later, stamp
from troupe_observatory.workflow import plan

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)  # the simulation's start (conftest)

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- pod names ---------------------------------------------------------------------------------------

#: Workflow names are DNS subdomains (dots allowed, up to 253); task names DNS labels starting with a
#: letter. Chosen to meet: dots against dashes, the same text split at different dashes, digits that
#: look like run numbers, hex that looks like a hash, names at and past every cut.
WORKFLOWS = [
    "a", "b", "a-1", "a.1", "a-b", "a.b", "a-b-1", "pc", "pc-1", "pc-1-x", "pc.1.x", "team.x", "team-x",
    "1", "1-1", "w" * 40, "w" * 41, "w" * 49, "w" * 50, "w" * 63, "w" * 62 + "x", "w" * 253,
    "a." * 100 + "a", "a-" * 30 + "a", "x" * 45 + "-1-y",
]  # fmt: skip
TASKS = [
    "a", "b", "y", "x-1-y", "x-1", "b-1", "a-b", "ab", "abcdef12", "t" * 63,
    "t" * 62 + "u", "t" * 9, "t-t", "a" + "-a" * 31,
]  # fmt: skip
RUNS = [1, 2, 11, 12, 111, 1_000_000, 9_999_999_999]
ATTEMPTS = [1, 2, 11]


def test_adversarial_pairs_never_share_a_pod_name():
    assert pod_name("pc", 1, "x-1-y", 1) != pod_name("pc-1-x", 1, "y", 1)  # the pair
    assert pod_name("team.x", 1, "a", 1) != pod_name("team-x", 1, "a", 1)
    assert pod_name("a", 1, "b-c", 1) != pod_name("a-b", 1, "c", 1)
    assert pod_name("a", 11, "b", 1) != pod_name("a-1", 1, "b", 1) != pod_name("a", 1, "b", 11)
    long = "w" * 63
    assert pod_name(long, 1, "t" * 63, 1) != pod_name(long, 1, "t" * 62 + "u", 1)


def test_every_tuple_gets_its_own_valid_name():
    names: dict[str, tuple[str, int, str, int]] = {}
    for key in itertools.product(WORKFLOWS, RUNS, TASKS, ATTEMPTS):
        name = pod_name(*key)
        assert len(name) <= 63 and DNS_LABEL.match(name), (key, name)
        assert names.setdefault(name, key) == key, f"{key} and {names[name]} share {name}"
    assert len(names) == len(WORKFLOWS) * len(RUNS) * len(TASKS) * len(ATTEMPTS)


def _random_name(rng: random.Random, alphabet: str, first: str, longest: int) -> str:
    text = rng.choice(first) + "".join(rng.choice(alphabet) for _ in range(rng.randrange(longest)))
    return text.rstrip("-.") or text[0]


def test_random_names_are_injective_and_valid():
    """A seeded fuzz over a small alphabet, so that splits, dots and dashes meet often."""
    rng = random.Random(9)
    names: dict[str, tuple[str, int, str, int]] = {}
    for _ in range(20_000):
        workflow = _random_name(rng, "a1-.", "a1", rng.choice((4, 12, 70, 253)))
        task = _random_name(rng, "a1-", "a", rng.choice((4, 12, 63)))[:63].rstrip("-")
        key = (workflow, rng.choice((1, 2, 11, 12)), task, rng.choice((1, 2, 11)))
        name = pod_name(*key)
        assert len(name) <= 63 and DNS_LABEL.match(name), (key, name)
        assert names.setdefault(name, key) == key, f"{key} and {names[name]} share {name}"


def test_plain_names_read_as_before():
    assert pod_name("my-workflow", 3, "build", 2) == "my-workflow-3-build-2"
    # a task with a dash could be read two ways: the hash of (workflow, task), run and attempt at the end
    assert re.fullmatch(r"my-workflow-task-2-[0-9a-f]{8}-1-1", pod_name("my-workflow", 1, "task-2", 1))
    assert re.fullmatch(r"team-x-a-[0-9a-f]{8}-1-1", pod_name("team.x", 1, "a", 1))


def test_tasks_whose_pods_would_share_names_are_refused():
    workflow = "w" * 45  # the cut leaves no room for the task: only the hash tells them apart
    # found by a birthday search: sha256("w"*45 + "/t-662") and ".../t-29736" start alike
    assert pod_name(workflow, 1, "t-662", 1) != pod_name(workflow, 1, "t-29736", 1)
    assert pod_name(workflow, 100, "t-662", 1) == pod_name(workflow, 100, "t-29736", 1), "from run 100"
    assert shared_pod_names(workflow, ["t-662", "a", "t-29736"]) == [("t-662", "t-29736")]
    assert shared_pod_names("wf", ["t-662", "t-29736"]) == [], "short names keep the task in clear"
    spec = {"tasks": [{"name": "t-662", "image": "i"}, {"name": "t-29736", "image": "i"}]}
    context = ReconcileContext(
        kind=OBSERVATORY,
        body={"metadata": {"name": workflow, "namespace": "ns"}, "spec": spec},
        spec=ObservatorySpec.model_validate(spec),
        now=T0,
    )
    assert plugin.troupe_validate(context) == [
        "spec.tasks: tasks t-662 and t-29736 would share pod names (their names hash alike in this "
        "workflow); rename one of them"
    ]


def test_labels_are_valid_and_read_back():
    for workflow in ("team.x", "w" * 253, "a." * 100 + "a", "wf"):
        pod = build_pod(workflow, "ns", 12, Task(name="t" * 63, image="i"), 11)
        labels = pod["metadata"]["labels"]
        assert all(len(v) <= 63 and LABEL_VALUE.match(v) for v in labels.values()), labels
        assert (labels[RUN_LABEL], labels[TASK_LABEL], labels[ATTEMPT_LABEL]) == ("12", "t" * 63, "11")
    assert (
        build_pod("team.x", "ns", 1, Task(name="a", image="i"), 1)["metadata"]["labels"][WORKFLOW_LABEL]
        == "team.x"
    ), "a valid label value is kept as it is"


def test_pods_of_the_old_name_form_are_still_followed(sim, mk_task):
    """Pods are found by their labels: a running workflow keeps its pods across a name-form change."""
    s = sim({"tasks": [mk_task("task-1"), mk_task("task-2", "task-1")]})
    s.settle()
    new_name = s.pod("task-1")["metadata"]["name"]
    old = s.pods.pop(new_name)
    old["metadata"]["name"] = "wf-1-task-1-1"  # as 0.1.0 named it
    s.pods["wf-1-task-1-1"] = old
    s.settle()
    assert set(s.pods) == {"wf-1-task-1-1"}, "no second pod for the running attempt"
    s.advance(3)
    s.finish("task-1")
    s.settle()
    assert s.task("task-1")["phase"] == "Succeeded" and s.task("task-1")["attempts"] == 1
    assert s.running() == ["task-2"]


# -- bounds: nothing overflows -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backoff", "attempt", "seconds"),
    [
        ({"duration": "36500d", "factor": 10, "maxDuration": "36500d"}, 11, 36500 * 86400),
        ({"duration": "999999999ms", "factor": 10, "maxDuration": "36500d"}, 11, 36500 * 86400),
        ({"duration": "0s", "factor": 10, "maxDuration": "1s"}, 11, 0),
        ({"duration": "1h", "factor": 10, "maxDuration": "1s"}, 1, 1),
    ],
)
def test_backoff_of_huge_values_is_capped(backoff, attempt, seconds):
    task = Task.model_validate({"name": "t", "image": "i", "retries": 10, "backoff": backoff})
    assert backoff_delay(task, attempt).total_seconds() == seconds


def test_later_holds_at_the_end_of_time():
    far = datetime(9999, 12, 31, tzinfo=UTC)
    assert later(far, timedelta(days=36500)) == END_OF_TIME
    assert later(T0, timedelta(days=1)) == T0 + timedelta(days=1)
    assert stamp(END_OF_TIME) == "9999-12-31T23:59:59.999Z"


def test_huge_timeouts_and_backoffs_run_to_their_end(sim, mk_task):
    longest = "36500d"
    s = sim({"tasks": [
        mk_task("slow", timeout="24855d"),
        mk_task("flaky", retries=10, backoff={"duration": longest, "factor": 10, "maxDuration": longest}),
    ]})  # fmt: skip
    s.settle()
    assert s.pod("slow")["spec"]["activeDeadlineSeconds"] == 24855 * 86400 < 2**31
    s.advance(1)
    s.finish("flaky", exit_code=1)
    result = s.settle()
    assert s.task("flaky")["retryAt"] == stamp(T0 + timedelta(seconds=1, days=36500))
    assert result.status.requeue_after is not None and result.status.requeue_after > 0
    s.finish("slow")
    s.settle()
    assert s.phases() == {"slow": "Succeeded", "flaky": "Pending"}


def test_times_read_back_from_a_hand_edited_status_never_raise(sim, mk_task):
    s = sim({"tasks": [mk_task("a", timeout="1h", retries=1)], "schedule": "* * * * *"})
    s.status = {
        "run": 1,
        "lastScheduleTime": "9999-12-31T23:59:59Z",
        "tasks": [{"name": "a", "phase": "Running", "attempts": 1, "startedAt": "9999-12-31T23:59:59Z"}],
    }
    s.settle()
    s.status["tasks"][0].update(startedAt="yesterday", retryAt="soon")
    s.settle()
    s.status["lastScheduleTime"] = "not a time"
    s.settle()
    assert s.status["phase"] in ("Pending", "Running")


# -- records agree with their pods ---------------------------------------------------------------------


def _finished_pod(s, task: str, created: datetime, started: datetime, finished: datetime) -> None:
    pod = s.pod(task)
    pod["metadata"]["creationTimestamp"] = iso(created)
    pod["status"] = {
        "phase": "Succeeded",
        "startTime": iso(started),
        "containerStatuses": [
            {"name": "main", "state": {"terminated": {
                "exitCode": 0, "startedAt": iso(started), "finishedAt": iso(finished), "reason": "Completed",
            }}},
        ],
    }  # fmt: skip


def test_a_pod_the_status_did_not_know_takes_its_own_times(sim, mk_task):
    """The operator was killed after creating a pod and before recording it; it comes back a minute
    after the pod ended: the record must say when the pod ran, not when the operator looked."""
    s = sim({"tasks": [mk_task("a"), mk_task("b", "a")]})
    s.reconcile()
    recorded = dict(s.status)
    _finished_pod(s, "a", T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=5))
    s.status = {k: v for k, v in recorded.items() if k != "tasks"}  # the status write was lost
    s.advance(60)
    s.settle()
    a = s.task("a")
    assert a["phase"] == "Succeeded"
    assert (a["startedAt"], a["finishedAt"]) == (stamp(T0), stamp(T0 + timedelta(seconds=5)))


def test_a_pod_that_finished_within_its_first_second_never_ends_before_it_started(sim, mk_task):
    s = sim({"tasks": [mk_task("a")]}, now=T0 + timedelta(milliseconds=900))
    s.settle()
    assert s.task("a")["startedAt"] == "2030-01-01T12:00:00.900Z", "a fresh pod: the reconcile's ms"
    # the kubelet writes whole seconds: the pod "finished" at 12:00:00, before the record's start
    _finished_pod(s, "a", T0, T0, T0)
    s.advance(0.05)
    s.settle()
    a = s.task("a")
    assert a["finishedAt"] == a["startedAt"] == "2030-01-01T12:00:00.900Z"


def test_metrics_never_observe_a_negative_duration():
    registry = CollectorRegistry()
    metrics = TaskMetrics.create(OperatorMetrics("observatory", registry))
    old = {"run": 1, "startTime": "2030-01-01T00:00:10.000Z", "tasks": [{"name": "a", "phase": "Pending"}]}
    new = {"run": 1, "startTime": "2030-01-01T00:00:10.000Z", "tasks": [
        {"name": "a", "phase": "Succeeded", "attempts": 1, "startedAt": "2030-01-01T00:00:05.000Z",
         "finishedAt": "2030-01-01T00:00:01.000Z"},
    ]}  # fmt: skip
    observe(metrics, {"run": 1, "tasks": []}, old, {"a": []})
    observe(metrics, old, new, {"a": []})
    get = registry.get_sample_value
    assert get("troupe_observatory_task_duration_seconds_count", {"result": "Succeeded"}) == 1
    assert get("troupe_observatory_task_duration_seconds_sum", {"result": "Succeeded"}) == 0
    assert get("troupe_observatory_scheduling_latency_seconds_sum") == 0


def test_plan_over_adopted_pods_keeps_start_before_finish():
    """Many pods found at once after an outage, in every order of their times."""
    spec = ObservatorySpec.model_validate({"tasks": [{"name": f"t{i}", "image": "i"} for i in range(20)]})
    rng = random.Random(3)
    pods = []
    for i in range(20):
        pod = build_pod("wf", "ns", 1, spec.tasks[i], 1)
        created = T0 + timedelta(seconds=rng.randrange(100))
        ended = created + timedelta(seconds=rng.randrange(-3, 30))  # clocks of different machines
        pod["metadata"]["creationTimestamp"] = iso(created)
        pod["status"] = {"phase": "Succeeded", "containerStatuses": [
            {"name": "main", "state": {"terminated": {"exitCode": 0, "finishedAt": iso(ended)}}},
        ]}  # fmt: skip
        pods.append(pod)
    result = plan(spec, name="wf", namespace="ns", created=T0, status={"run": 1}, pods=pods,
                  now=T0 + timedelta(minutes=10))  # fmt: skip
    for rec in result.status.fields["tasks"]:
        assert rec["phase"] == "Succeeded" and rec["startedAt"] <= rec["finishedAt"], rec
