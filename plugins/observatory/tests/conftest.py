"""A simulated cluster for the pure plan: reconciles as the core runs them, pods finished on demand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from troupe.engine.status import desired_status, updated_status
from troupe_observatory import workflow
from troupe_observatory.models import ObservatorySpec
from troupe_observatory.pods import labels_of
from troupe_observatory.workflow import Plan

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Sim:
    """One Observatory and its pods; :meth:`reconcile` does what the core does with the two hooks."""

    def __init__(self, spec: dict[str, Any], name: str = "wf", now: datetime = T0) -> None:
        self.spec_dict = spec
        self.name = name
        self.now = now
        self.created = now
        self.status: dict[str, Any] = {}
        self.pods: dict[str, dict[str, Any]] = {}
        self.created_log: list[tuple[datetime, str]] = []
        self.deleted_log: list[tuple[datetime, str]] = []
        self.last: Plan | None = None

    @property
    def spec(self) -> ObservatorySpec:
        return ObservatorySpec.model_validate(self.spec_dict)

    def _plan(self) -> Plan:
        return workflow.plan(
            self.spec,
            name=self.name,
            namespace="ns",
            created=self.created,
            status=self.status,
            pods=sorted(self.pods.values(), key=lambda p: p["metadata"]["name"]),
            now=self.now,
        )

    def reconcile(self) -> Plan:
        build = self._plan()
        wanted = {p["metadata"]["name"] for p in build.pods}
        for manifest in build.created:
            name = manifest["metadata"]["name"]
            if name not in self.pods:
                pod = {**manifest, "status": {"phase": "Pending"}}
                pod["metadata"] = {**manifest["metadata"], "creationTimestamp": iso(self.now), "uid": name}
                self.pods[name] = pod
                self.created_log.append((self.now, name))
        status_pass = self._plan()  # sees the created pods; pruned ones are still in ctx.children then
        # What lets the plugin skip this second plan (plugin._Built): shown the pods it created, the
        # plan starts nothing more and decides the same status. Checked at every step of every scenario.
        assert not status_pass.created, "shown the pods it created, the plan starts more"
        assert status_pass.status == build.status, "shown the pods it created, the plan decides otherwise"
        for name in [
            n
            for n in self.pods
            if n not in wanted and n not in {m["metadata"]["name"] for m in build.created}
        ]:
            del self.pods[name]
            self.deleted_log.append((self.now, name))
        desired = desired_status(self.status, status_pass.status, now=self.now, generation=1)
        self.status = updated_status(self.status, desired)
        self.last = status_pass
        return status_pass

    def settle(self, rounds: int = 5) -> Plan:
        """Reconcile until nothing changes (what the watch events would cause)."""
        result = self.reconcile()
        for _ in range(rounds):
            before = (dict(self.status), set(self.pods))
            result = self.reconcile()
            if (dict(self.status), set(self.pods)) == before:
                break
        return result

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    # -- pods -----------------------------------------------------------------------------------

    def pod(self, task: str, run: int | None = None, attempt: int | None = None) -> dict[str, Any]:
        matches = [
            p
            for p in self.pods.values()
            if (ids := labels_of(p))
            and ids[1] == task
            and (run is None or ids[0] == run)
            and (attempt is None or ids[2] == attempt)
        ]
        assert matches, f"no pod for task {task} (pods: {sorted(self.pods)})"
        return max(matches, key=lambda p: (labels_of(p) or (0, "", 0))[0::2])

    def running(self) -> list[str]:
        return sorted(
            (labels_of(p) or (0, "", 0))[1]
            for p in self.pods.values()
            if p["status"]["phase"] in ("Pending", "Running")
        )

    def start(self, task: str, **kw: Any) -> None:
        pod = self.pod(task, **kw)
        pod["status"] = {"phase": "Running", "startTime": iso(self.now)}

    def finish(self, task: str, exit_code: int = 0, reason: str | None = None, **kw: Any) -> None:
        pod = self.pod(task, **kw)
        pod["status"] = {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "startTime": pod["status"].get("startTime", iso(self.now)),
            "containerStatuses": [
                {
                    "name": "main",
                    "state": {
                        "terminated": {
                            "exitCode": exit_code,
                            "finishedAt": iso(self.now),
                            "reason": reason or ("Completed" if exit_code == 0 else "Error"),
                        }
                    },
                }
            ],
        }

    def task(self, name: str) -> dict[str, Any]:
        return next(t for t in self.status.get("tasks", []) if t["name"] == name)

    def phases(self) -> dict[str, str]:
        return {t["name"]: t["phase"] for t in self.status.get("tasks", [])}

    def condition(self, type_: str) -> dict[str, Any]:
        return next(c for c in self.status["conditions"] if c["type"] == type_)


@pytest.fixture(autouse=True)
def advance_writes_into_no_record_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """In every scenario: what lets the scheduler copy only the records it changes."""
    real = workflow.advance

    def checked(*args: Any, previous: Any, **kwargs: Any) -> Any:
        before = [t.model_dump() for t in previous]
        result = real(*args, previous=previous, **kwargs)
        assert [t.model_dump() for t in previous] == before, "advance wrote into a record it was given"
        return result

    monkeypatch.setattr(workflow, "advance", checked)


@pytest.fixture(autouse=True)
def plan_writes_into_no_status_it_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """In every scenario: what lets a plan reuse the status the one before it parsed."""
    real = workflow.plan

    def checked(spec: Any, **kwargs: Any) -> Any:
        old = workflow._old_status(kwargs["status"], (kwargs["namespace"], kwargs["name"]))
        before = old.model_dump()
        result = real(spec, **kwargs)
        assert old.model_dump() == before, "the plan wrote into the status it parsed"
        return result

    monkeypatch.setattr(workflow, "plan", checked)


@pytest.fixture
def sim() -> Callable[..., Sim]:
    return Sim


def task(name: str, *deps: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "image": "busybox"}
    if deps:
        body["dependencies"] = list(deps)
    body.update(extra)
    return body


@pytest.fixture
def diamond() -> dict[str, Any]:
    return {"tasks": [task("a"), task("b", "a"), task("c", "a"), task("d", "b", "c")]}


@pytest.fixture
def mk_task() -> Callable[..., dict[str, Any]]:
    return task
