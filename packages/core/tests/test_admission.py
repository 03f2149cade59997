"""Admission: first come first served by creation time, holders keep their slots, limits change live."""

from __future__ import annotations

from typing import Any

from troupe.context import AdmissionState
from troupe.engine.admission import line_up, newly_admitted
from troupe.kinds import Admission

POLICY = Admission(
    limit=lambda related: 1,
    holding=lambda body: (body.get("status") or {}).get("phase") == "Provisioning",
    waiting=lambda body: (body.get("status") or {}).get("phase") in (None, "Queued"),
)


def obj(name: str, created: str, phase: str | None = None, **meta: Any) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {"metadata": {"name": name, "creationTimestamp": created, **meta}}
    if phase:
        body["status"] = {"phase": phase}
    return name, body


def test_waiters_are_admitted_in_creation_order() -> None:
    states = line_up(POLICY, [obj("b", "2026-01-02T00:00:00Z"), obj("a", "2026-01-03T00:00:00Z")], limit=1)
    assert states == {
        "b": AdmissionState(admitted=True, limit=1),
        "a": AdmissionState(admitted=False, position=1, limit=1),
    }


def test_a_holder_keeps_its_slot_against_an_older_waiter() -> None:
    objects = [obj("old", "2026-01-01T00:00:00Z"), obj("busy", "2026-01-05T00:00:00Z", "Provisioning")]
    states = line_up(POLICY, objects, limit=1)
    assert states["busy"].admitted and not states["old"].admitted


def test_ready_failed_and_deleting_objects_take_no_slot() -> None:
    objects = [
        obj("ready", "2026-01-01T00:00:00Z", "Ready"),
        obj("gone", "2026-01-01T00:00:00Z", "Provisioning", deletionTimestamp="2026-01-09T00:00:00Z"),
        obj("next", "2026-01-02T00:00:00Z"),
    ]
    assert line_up(POLICY, objects, limit=1) == {"next": AdmissionState(admitted=True, limit=1)}


def test_positions_count_from_the_next_in_line_and_no_limit_admits_all() -> None:
    objects = [obj(n, f"2026-01-0{i + 1}T00:00:00Z") for i, n in enumerate("abcd")]
    states = line_up(POLICY, objects, limit=2)
    assert [states[n].position for n in "abcd"] == [0, 0, 1, 2]
    assert all(s.admitted for s in line_up(POLICY, objects, limit=None).values())
    assert not any(s.admitted for s in line_up(POLICY, objects, limit=0).values())


def test_ties_in_creation_time_break_by_namespace_then_name() -> None:
    objects = [
        obj("z", "2026-01-01T00:00:00Z", namespace="a"),
        obj("a", "2026-01-01T00:00:00Z", namespace="b"),
    ]
    assert line_up(POLICY, objects, limit=1)["z"].admitted


def test_a_freed_slot_or_raised_limit_admits_the_next_waiter() -> None:
    before = line_up(
        POLICY, [obj("a", "2026-01-01T00:00:00Z", "Provisioning"), obj("b", "2026-01-02T00:00:00Z")], 1
    )
    freed = line_up(POLICY, [obj("a", "2026-01-01T00:00:00Z", "Ready"), obj("b", "2026-01-02T00:00:00Z")], 1)
    assert newly_admitted(before, freed) == ["b"]
    raised = line_up(
        POLICY, [obj("a", "2026-01-01T00:00:00Z", "Provisioning"), obj("b", "2026-01-02T00:00:00Z")], 2
    )
    assert newly_admitted(before, raised) == ["b"]
    assert newly_admitted(before, before) == []
