"""Pure status computation: the status a StatusUpdate implies, and the merge patch that writes it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from troupe.conditions import Condition, merge_conditions, transitions
from troupe.context import StatusUpdate

#: Condition types whose True status is bad news: their transitions are posted as Warning events.
NEGATIVE_CONDITIONS = frozenset(
    {"Degraded", "ExpiringSoon", "Failed", "NameConflict", "Stalled", "Suspended"}
)


def failed(reason: str, message: str) -> StatusUpdate:
    """The update for a spec the operator cannot act on: phase Failed, Ready=False saying what to fix."""
    return StatusUpdate(
        phase="Failed",
        conditions=[Condition(type="Ready", status="False", reason=reason, message=message)],
    )


def desired_status(
    observed: dict[str, Any] | None, update: StatusUpdate, *, now: datetime, generation: int
) -> dict[str, Any]:
    """The full status after ``update``: fields, phase, merged conditions, observedGeneration."""
    observed = observed or {}
    status: dict[str, Any] = dict(update.fields)
    if update.phase is not None:
        status["phase"] = update.phase
    status["conditions"] = merge_conditions(
        observed.get("conditions"), update.conditions, now=now, generation=generation
    )
    status["observedGeneration"] = generation
    return status


def updated_status(observed: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any]:
    """The status once ``desired`` is written over ``observed``, as the API server will store it.

    Each key ``desired`` names takes its value whole; the keys it does not name stay as they are
    (another writer's). A None removes its key, at any depth, in lists too: the server stores no null
    (it prunes a null field of a structural schema), so a status holding one would never look written.
    """
    status: dict[str, Any] = _without_nulls({**(observed or {}), **desired})
    return status


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """The smallest JSON merge patch (RFC 7396) taking ``old`` to ``new``, or None when they are equal.

    Only what differs is sent: a nested map as a patch of its own, a key gone as an explicit null. A
    list is sent whole, since a merge patch replaces lists. ``new`` holds no null map values (they
    would read as removals); :func:`apply_merge_patch` of the result to ``old`` gives ``new`` back.
    """
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if key in old and before == value:
            continue
        if isinstance(value, dict) and isinstance(before, dict):
            patch[key] = merge_patch(before, value) or {}
        else:
            patch[key] = value
    return patch or None


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: ``patch`` applied to ``target``, as the API server applies a merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def events_for(observed: dict[str, Any] | None, desired: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events the transition from ``observed`` to ``desired`` deserves."""
    events = []
    for cond in transitions((observed or {}).get("conditions"), desired.get("conditions", [])):
        negative = cond["type"] in NEGATIVE_CONDITIONS
        if negative and cond["status"] != "True":
            continue  # the end of a warning shows in Ready's own transition
        warning = negative or (cond["status"] == "False" and desired.get("phase") == "Failed")
        events.append(("Warning" if warning else "Normal", cond["reason"], cond["message"] or cond["type"]))
    return events
