"""The bad-input corpus, as the operator sees it: each case is refused naming the field, ends Failed with a
message saying what to fix, or runs; none raises anything else, none is left without an outcome.

The API server refuses most of these before the operator sees them (e2e/test_observatory.py applies the
same kinds of input to it); here the model and the validate hook are the last line, for what the schema
cannot express (a duration's upper bound, a quantity, the graph, the schedule).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from troupe import ReconcileContext
from troupe_observatory import plugin
from troupe_observatory.models import OBSERVATORY, ObservatorySpec


def t(name: str = "a", *deps: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", **({"dependencies": list(deps)} if deps else {}), **extra}


def one(**extra: Any) -> dict[str, Any]:
    """A one-task workflow with ``extra`` on its task."""
    return {"tasks": [t(**extra)]}


#: (case, spec, outcome, text): outcome "refused" (the model's message names the field ``text``),
#: "failed" (the validate hook's message contains ``text``) or "runs".
CORPUS: list[tuple[str, dict[str, Any], str, str]] = [
    # wrong types
    ("tasks a string", {"tasks": "a"}, "refused", "spec.tasks: Input should be a valid list"),
    ("task without image", {"tasks": [{"name": "a"}]}, "refused", "spec.tasks.0.image: Field required"),
    ("retries a word", one(retries="three"), "refused", "spec.tasks.0.retries"),
    ("timeout a number", one(timeout=30), "refused", "spec.tasks.0.timeout"),
    ("schedule a number", {"tasks": [t()], "schedule": 5}, "refused", "spec.schedule"),
    ("resources a word", one(resources={"requests": {"cpu": "lots"}}), "refused",
     "spec.tasks.0.resources.requests.cpu: Value error, 'lots' is not a quantity"),
    ("env source without key", one(env=[{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s"}}}]),
     "refused", "spec.tasks.0.env.0.valueFrom.secretKeyRef.key: Field required"),
    ("env name with a space", one(env=[{"name": "MY VAR", "value": "1"}]), "refused",
     "spec.tasks.0.env.0.name"),
    ("label value with a space", one(metadata={"labels": {"team": "a b"}}), "refused",
     "spec.tasks.0.metadata.labels: Value error, label team: 'a b' is not a valid label value"),
    ("label key with a space", one(metadata={"labels": {"my team": "a"}}), "refused",
     "spec.tasks.0.metadata.labels: Value error, label key 'my team' is not a valid key"),
    ("annotation key of unicode", one(metadata={"annotations": {"\u00e9quipe": "a"}}), "refused",
     "spec.tasks.0.metadata.annotations: Value error, annotation key"),
    ("prefixed keys", one(metadata={"labels": {"example.com/team": "a", "x": ""},
                                    "annotations": {"example.com/note": "any text at all"}}), "runs", ""),
    # huge and tiny values
    ("timeout 99999999999999d", one(timeout="99999999999999d"), "refused", "spec.tasks.0.timeout"),
    ("timeout past 100 years", one(timeout="36501d"), "refused",
     "spec.tasks.0.timeout: Value error, duration '36501d' is longer than the maximum of 36500d"),
    ("timeout 0s", one(timeout="0s"), "refused",
     "spec.tasks.0.timeout: Value error, timeout '0s' ends every attempt before it starts"),
    ("timeout past int32 seconds", one(timeout="24856d"), "refused",
     "spec.tasks.0.timeout: Value error, timeout '24856d' is longer than a pod's activeDeadlineSeconds"),
    ("timeout of 24855 days", one(timeout="24855d"), "runs", ""),
    ("backoff past 100 years", one(retries=1, backoff={"duration": "999999999d"}), "refused",
     "spec.tasks.0.backoff.duration"),
    ("backoff cap past 100 years", one(retries=1, backoff={"maxDuration": "40000d"}), "refused",
     "spec.tasks.0.backoff.maxDuration"),
    ("backoff 100 years x10^9", one(retries=10, backoff={"duration": "36500d", "factor": 10,
                                                         "maxDuration": "36500d"}), "runs", ""),
    ("backoff factor 0", one(retries=1, backoff={"factor": 0}), "refused", "spec.tasks.0.backoff.factor"),
    ("backoff factor 10^30", one(retries=1, backoff={"factor": 10**30}), "refused",
     "spec.tasks.0.backoff.factor"),
    ("retries -1", one(retries=-1), "refused", "spec.tasks.0.retries"),
    ("retries 10^30", one(retries=10**30), "refused", "spec.tasks.0.retries"),
    ("cpu -1", one(resources={"limits": {"cpu": -1}}), "refused", "spec.tasks.0.resources.limits.cpu"),
    ("memory 2^60", one(resources={"limits": {"memory": 2**60}}), "refused",
     "spec.tasks.0.resources.limits.memory"),
    ("startingDeadlineSeconds 10^20", {"tasks": [t()], "startingDeadlineSeconds": 10**20}, "refused",
     "spec.startingDeadlineSeconds"),
    ("startingDeadlineSeconds -1", {"tasks": [t()], "startingDeadlineSeconds": -1}, "refused",
     "spec.startingDeadlineSeconds"),
    ("startingDeadlineSeconds 100 years", {"tasks": [t()], "schedule": "@hourly",
                                           "startingDeadlineSeconds": 36500 * 86400}, "runs", ""),
    ("historyLimit 0", {"tasks": [t()], "historyLimit": 0}, "refused", "spec.historyLimit"),
    ("historyLimit 10^30", {"tasks": [t()], "historyLimit": 10**30}, "refused", "spec.historyLimit"),
    ("catch-up limit 0", {"tasks": [t()], "catchUp": {"policy": "RunAll", "limit": 0}}, "refused",
     "spec.catchUp.limit"),
    ("catch-up limit 10^6", {"tasks": [t()], "catchUp": {"policy": "RunAll", "limit": 10**6}}, "refused",
     "spec.catchUp.limit"),
    ("maxConcurrent 0", {"tasks": [t()], "maxConcurrent": 0}, "refused", "spec.maxConcurrent"),
    ("maxConcurrent 10^9", {"tasks": [t()], "maxConcurrent": 10**9}, "refused", "spec.maxConcurrent"),
    # names
    ("empty task list", {"tasks": []}, "refused", "spec.tasks: List should have at least 1 item"),
    ("unicode task name", {"tasks": [t("ünï")]}, "refused", "spec.tasks.0.name"),
    ("task name of emoji", {"tasks": [t("🚀")]}, "refused", "spec.tasks.0.name"),
    ("upper-case task name", {"tasks": [t("Build")]}, "refused", "spec.tasks.0.name"),
    ("overlong task name", {"tasks": [t("a" * 64)]}, "refused", "spec.tasks.0.name"),
    ("longest task name", {"tasks": [t("a" * 63), t("b" * 63, "a" * 63)]}, "runs", ""),
    ("unicode dependency", {"tasks": [t("a", "ü")]}, "failed",
     "spec.tasks[a].dependencies: unknown task 'ü' (tasks are: a)"),
    # graphs
    ("unknown dependency", {"tasks": [t("a"), t("b", "ghost")]}, "failed", "unknown task 'ghost'"),
    ("cycle", {"tasks": [t("a", "b"), t("b", "a")]}, "failed", "dependency cycle a -> b -> a"),
    ("long cycle", {"tasks": [t(f"t{i}", f"t{(i + 1) % 500}") for i in range(500)]}, "failed",
     "dependency cycle t0 -> t1 -> t2"),
    ("33 dependencies", {"tasks": [*(t(f"d{i}") for i in range(33)), t("x", *(f"d{i}" for i in range(33)))]},
     "refused", "spec.tasks.33.dependencies"),
    ("1,001 tasks", {"tasks": [t(f"t{i}") for i in range(1001)]}, "refused",
     "spec.tasks: List should have at most 1000"),
    ("1,000-task graph", {"tasks": [t(f"t{i}", *([f"t{i // 2}"] if i else [])) for i in range(1000)]},
     "runs", ""),
    ("1,000-task chain", {"tasks": [t(f"t{i}", *([f"t{i - 1}"] if i else [])) for i in range(1000)]},
     "runs", ""),
    # schedules and zones
    ("minute 60", {"tasks": [t()], "schedule": "60 * * * *"}, "failed",
     "spec.schedule: minute: 60 is out of range 0-59"),
    ("31 February", {"tasks": [t()], "schedule": "* * 31 2 *"}, "failed", "never fires (no such day)"),
    ("@reboot", {"tasks": [t()], "schedule": "@reboot"}, "failed", "unknown macro '@reboot'"),
    ("superscript two", {"tasks": [t()], "schedule": "\u00b2 * * * *"}, "failed", "is not a number"),
    ("six fields", {"tasks": [t()], "schedule": "0 * * * * *"}, "refused", "spec.schedule"),
    ("Mars time", {"tasks": [t()], "schedule": "@hourly", "timeZone": "Mars/Olympus"}, "failed",
     "spec.schedule: unknown time zone 'Mars/Olympus'"),
    ("UTC+1", {"tasks": [t()], "schedule": "@hourly", "timeZone": "UTC+1"}, "failed",
     "Etc/GMT-1 for UTC+1"),
    ("empty zone", {"tasks": [t()], "schedule": "@hourly", "timeZone": ""}, "refused", "spec.timeZone"),
    ("path as zone", {"tasks": [t()], "schedule": "@hourly", "timeZone": "../../etc/passwd"}, "failed",
     "unknown time zone"),
    ("DST gap time", {"tasks": [t()], "schedule": "30 2 * * *", "timeZone": "Europe/Paris"}, "runs", ""),
    ("30-minute DST", {"tasks": [t()], "schedule": "15 2 * * *", "timeZone": "Australia/Lord_Howe"},
     "runs", ""),
]  # fmt: skip


def _messages(exc: ValidationError) -> str:
    """The errors as the core reports them in the InvalidSpec condition: ``spec.<path>: <message>``."""
    return "; ".join(".".join(map(str, ("spec", *e["loc"]))) + f": {e['msg']}" for e in exc.errors())


def _context(spec: ObservatorySpec, raw: dict[str, Any]) -> ReconcileContext[Any]:
    body = {"metadata": {"name": "wf", "namespace": "ns", "creationTimestamp": "2030-01-01T00:00:00Z"}}
    return ReconcileContext(
        kind=OBSERVATORY, body={**body, "spec": raw}, spec=spec, now=datetime(2030, 1, 1, tzinfo=UTC)
    )


@pytest.mark.parametrize(("case", "raw", "outcome", "text"), CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus(case: str, raw: dict[str, Any], outcome: str, text: str, sim: Callable[..., Any]) -> None:
    if outcome == "refused":
        with pytest.raises(ValidationError) as caught:
            ObservatorySpec.model_validate(raw)
        assert text in _messages(caught.value)
        return
    spec = ObservatorySpec.model_validate(raw)
    messages = plugin.troupe_validate(_context(spec, raw))
    if outcome == "failed":
        assert any(text in m for m in messages or []), messages
        return
    assert messages == []
    s = sim(raw)
    for _ in range(3):  # starts, then follows: the first level of tasks runs, nothing raises
        s.settle()
        for name in s.running():
            s.finish(name, exit_code=1)
        s.advance(61)
    assert s.status.get("phase") in ("Pending", "Running", "Failed"), s.status
