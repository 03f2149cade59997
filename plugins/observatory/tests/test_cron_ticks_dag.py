"""The tick policy and the graph checks (the cron evaluator itself is tested in the core)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from troupe import Cron
from troupe_observatory import dag
from troupe_observatory.models import ObservatorySpec, Task
from troupe_observatory.ticks import decide


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def spec(**extra):
    return ObservatorySpec.model_validate(
        {"tasks": [{"name": "a", "image": "i"}], "schedule": "* * * * *", **extra}
    )


CREATED = at("2030-01-01T12:00:00")


def test_on_time_tick_starts_a_run():
    d = decide(
        spec(),
        Cron.parse("* * * * *"),
        last=None,
        created=CREATED,
        now=CREATED + timedelta(seconds=60.5),
        busy=False,
        resumed=False,
    )
    assert d.start == at("2030-01-01T12:01:00") and d.last_schedule == d.start and d.skipped == 0


def test_no_tick_due():
    d = decide(
        spec(),
        Cron.parse("* * * * *"),
        last=None,
        created=CREATED,
        now=CREATED + timedelta(seconds=30),
        busy=False,
        resumed=False,
    )
    assert d.start is None and d.last_schedule is None


@pytest.mark.parametrize(
    ("catch_up", "start", "skipped", "requeue"),
    [
        (None, "12:10", 9, None),  # Skip: the on-time tick runs, the 9 missed ones do not
        ({"policy": "RunOnce"}, "12:10", 9, None),
        ({"policy": "RunAll", "limit": 3}, "12:07", 6, 1.0),
    ],
)
def test_missed_ticks_with_an_on_time_one(catch_up, start, skipped, requeue):
    extra = {"catchUp": catch_up} if catch_up else {}
    now = at("2030-01-01T12:10:05")
    d = decide(
        spec(**extra),
        Cron.parse("* * * * *"),
        last=CREATED,
        created=CREATED,
        now=now,
        busy=False,
        resumed=False,
    )
    assert d.start == at(f"2030-01-01T{start}:00")
    assert d.skipped == skipped and d.requeue_after == requeue


@pytest.mark.parametrize(("policy", "start"), [("Skip", None), ("RunOnce", "12:14"), ("RunAll", "12:10")])
def test_all_ticks_late(policy, start):
    # the operator comes back 5 minutes after the last tick: no tick is on time
    now = at("2030-01-01T12:15:30")
    s = spec(catchUp={"policy": policy, "limit": 3}, schedule="*/2 * * * *")
    d = decide(
        s,
        Cron.parse("*/2 * * * *"),
        last=at("2030-01-01T12:00:00"),
        created=CREATED,
        now=now,
        busy=False,
        resumed=False,
    )
    if start is None:
        assert d.start is None and d.last_schedule == at("2030-01-01T12:14:00") and d.skipped == 7
        assert "7 ticks missed" in d.note
    else:
        assert d.start == at(f"2030-01-01T{start}:00")


def test_starting_deadline_drops_old_ticks():
    now = at("2030-01-01T12:10:30")
    s = spec(catchUp={"policy": "RunAll", "limit": 10}, startingDeadlineSeconds=150)
    d = decide(s, Cron.parse("* * * * *"), last=CREATED, created=CREATED, now=now, busy=False, resumed=False)
    assert d.start == at("2030-01-01T12:08:00"), "12:08 is exactly 150s old: still allowed"


def test_forbid_holds_the_tick_while_busy():
    now = at("2030-01-01T12:01:01")
    d = decide(
        spec(concurrencyPolicy="Forbid"),
        Cron.parse("* * * * *"),
        last=CREATED,
        created=CREATED,
        now=now,
        busy=True,
        resumed=False,
    )
    assert d.start is None and d.last_schedule == CREATED and "waits" in d.note
    allow = decide(
        spec(), Cron.parse("* * * * *"), last=CREATED, created=CREATED, now=now, busy=True, resumed=False
    )
    assert allow.start == at("2030-01-01T12:01:00")


@pytest.mark.parametrize(("suspend", "resumed"), [(True, False), (False, True)])
def test_ticks_while_suspended_are_skipped(suspend, resumed):
    now = at("2030-01-01T12:03:01")
    d = decide(
        spec(suspend=suspend),
        Cron.parse("* * * * *"),
        last=CREATED,
        created=CREATED,
        now=now,
        busy=False,
        resumed=resumed,
    )
    assert d.start is None and d.last_schedule == at("2030-01-01T12:03:00") and d.skipped == 3


def tasks(*pairs):
    return [
        Task.model_validate({"name": n, "image": "i", **({"dependencies": list(d)} if d else {})})
        for n, d in pairs
    ]


def test_cycle_is_named():
    assert dag.find_cycle(tasks(("a", "c"), ("b", "a"), ("c", "b"))) == ["a", "c", "b", "a"]
    assert dag.validate(tasks(("x", ""), ("y", "y"))) == []  # self-dependency: the schema's job
    assert dag.find_cycle(tasks(("a", ""), ("b", "a"), ("c", "ab"))) is None


def test_long_chain_has_no_recursion_limit():
    chain = tasks(*((f"t{i}", [f"t{i - 1}"] if i else []) for i in range(3000)))
    assert dag.find_cycle(chain) is None
    assert [t.name for t in dag.topological(chain)][:3] == ["t0", "t1", "t2"]


def test_unknown_dependency_message():
    assert dag.unknown_dependencies(tasks(("a", ""), ("b", ["a", "ghost"]))) == [
        "spec.tasks[b].dependencies: unknown task 'ghost' (tasks are: a, b)"
    ]


def test_topological_keeps_spec_order_among_equals():
    order = dag.topological(tasks(("d", "bc"), ("c", "a"), ("b", "a"), ("a", "")))
    assert [t.name for t in order] == ["a", "c", "b", "d"]
