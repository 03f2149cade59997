"""Admission: which waiting objects of a kind may provision now, derived from the observed objects alone."""

from __future__ import annotations

from collections.abc import Iterable

from troupe.context import AdmissionState, Manifest
from troupe.kinds import Admission


def line_up(
    admission: Admission, objects: Iterable[tuple[object, Manifest]], limit: int | None
) -> dict[object, AdmissionState]:
    """The admission state of every holding or waiting object, by key.

    Holders keep their slots; waiters are ordered by creation time (then namespace and name, so ties
    are stable) and take the free slots in that order.
    """
    holders, waiters = [], []
    for key, body in objects:
        if body["metadata"].get("deletionTimestamp"):
            continue
        if admission.holding(body):
            holders.append(key)
        elif admission.waiting(body):
            meta = body["metadata"]
            waiters.append(
                (meta.get("creationTimestamp") or "", meta.get("namespace") or "", meta["name"], key)
            )
    states = {key: AdmissionState(admitted=True, limit=limit) for key in holders}
    free = len(waiters) if limit is None else max(limit - len(holders), 0)
    for index, (*_, key) in enumerate(sorted(waiters, key=lambda w: w[:3])):
        admitted = index < free
        states[key] = AdmissionState(
            admitted=admitted, position=0 if admitted else index - free + 1, limit=limit
        )
    return states


def newly_admitted(before: dict[object, AdmissionState], after: dict[object, AdmissionState]) -> list[object]:
    """Waiters admitted by ``after`` that ``before`` held back: a freed slot, a raised limit."""
    return [
        key for key, state in after.items() if state.admitted and not (key in before and before[key].admitted)
    ]
