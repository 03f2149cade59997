"""Pure status computation: the status patch a StatusUpdate implies, or nothing when unchanged."""

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


def status_patch(observed: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any] | None:
    """The merge patch taking ``observed`` to ``desired``, or None when there is nothing to write.

    A field set to None in ``desired`` is removed; fields of ``observed`` that ``desired`` doesn't name
    are left alone (another writer's, or kopf's).
    """
    observed = observed or {}
    patch = {
        key: value
        for key, value in desired.items()
        if (value is None and key in observed) or (value is not None and observed.get(key) != value)
    }
    return patch or None


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
