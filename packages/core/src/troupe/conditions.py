"""metav1.Condition semantics: lastTransitionTime moves only when a condition's status flips."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from troupe.clock import isoformat

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(BaseModel):
    """A condition as a hook reports it; the core fills in the transition time and generation."""

    type: str = Field(description="CamelCase condition type, e.g. Ready.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="CamelCase machine-readable reason for the last change.")
    message: str = Field(default="", description="Human-readable detail: what happened, what to fix.")
    lastTransitionTime: str | None = Field(default=None, description="When status last changed.")
    observedGeneration: int | None = Field(default=None, description="The generation this was set for.")


def merge_conditions(
    old: list[dict[str, Any]] | None, new: list[Condition], *, now: datetime, generation: int
) -> list[dict[str, Any]]:
    """The conditions to store: ``new`` in order, each keeping its old transition time if unflipped.

    Conditions present before but not reported now are kept as they were, so a plugin that reports only
    some types never erases another writer's conditions.
    """
    previous = {c.get("type"): c for c in old or []}
    merged: list[dict[str, Any]] = []
    for cond in new:
        before = previous.pop(cond.type, None)
        moved = before is None or before.get("status") != cond.status
        merged.append(
            {
                "type": cond.type,
                "status": cond.status,
                "reason": cond.reason or cond.type,
                "message": cond.message,
                "lastTransitionTime": isoformat(now)
                if moved or not before or "lastTransitionTime" not in before
                else before["lastTransitionTime"],
                "observedGeneration": generation,
            }
        )
    merged.extend(previous.values())
    return merged


def transitions(old: list[dict[str, Any]] | None, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Conditions of ``new`` whose status or reason differs from ``old``: what deserves an Event."""
    previous = {c.get("type"): c for c in old or []}
    return [
        c
        for c in new
        if (p := previous.get(c["type"])) is None
        or (p.get("status"), p.get("reason")) != (c["status"], c["reason"])
    ]
