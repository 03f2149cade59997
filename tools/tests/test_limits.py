"""The workshop's limit program creates the objects the operator applies and writes its Running status:
otherwise the benchmark's ratio would compare a Workshop with a smaller one."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from troupe import ChildKey, Children
from troupe.engine.apply import complete_child
from troupe_workshop.builders import build
from troupe_workshop.config import Settings
from troupe_workshop.models import WorkshopSpec
from troupe_workshop.plugin import WORKSHOP
from troupe_workshop.status import workshop_status

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "limits"))
import workshop_limit
from bench_workshop import workshop

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def bench_workshop() -> dict[str, Any]:
    ws: dict[str, Any] = workshop(7)
    ws["metadata"].update(namespace="bench", uid="uid-7", generation=1, creationTimestamp="2026-11-27T08:59Z")
    return ws


def operator_children(ws: dict[str, Any]) -> list[dict[str, Any]]:
    spec = WorkshopSpec.model_validate(ws["spec"])
    kinds = {c.kind: c for c in WORKSHOP.children}
    built = build(spec, ws, Children({}), Settings(password_key=b"k" * 32), NOW)
    return [complete_child(WORKSHOP, ws, m, kinds[m["kind"]]) for m in built]


def test_the_limit_creates_what_the_operator_applies() -> None:
    ws = bench_workshop()
    ours = operator_children(ws)
    theirs = [body for _, body in workshop_limit.children(ws)]
    assert [m["kind"] for m in theirs] == [m["kind"] for m in ours]
    for mine, limit in zip(ours, theirs, strict=True):
        if mine["kind"] == "Secret":  # a password of its own, of the same length
            assert len(limit["data"]["password"]) == len(mine["data"]["password"])
            limit["data"]["password"] = mine["data"]["password"]
        assert limit == mine, mine["kind"]
    paths = [path for path, _ in workshop_limit.children(ws)]
    assert all(path.startswith("/api") and "/namespaces/bench/" in path for path in paths)


def test_the_limit_writes_the_operators_running_status() -> None:
    ws = bench_workshop()
    spec = WorkshopSpec.model_validate(ws["spec"])
    running = {"PersistentVolumeClaim": {"phase": "Bound"}, "Deployment": {"replicas": 1, "readyReplicas": 1}}
    children = [{**c, "status": running.get(c["kind"], {})} for c in operator_children(ws)]
    observed = Children({ChildKey.of(c): c for c in children})
    update = workshop_status(spec, ws, observed, Settings(password_key=b"k" * 32), NOW)
    assert update.phase == "Running"
    limit = workshop_limit.running_status(ws, NOW)
    fields = {k for k, v in update.fields.items() if v is not None}
    assert set(limit) == fields | {"phase", "conditions", "observedGeneration"}
    assert [c["type"] for c in limit["conditions"]] == [c.type for c in update.conditions]
    assert [c["reason"] for c in limit["conditions"]] == [c.reason for c in update.conditions]
    assert limit["participants"] == update.fields["participants"]
    assert limit["url"] == update.fields["url"]
