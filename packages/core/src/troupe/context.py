"""What a reconcile hands to the hooks, and what the status hook hands back."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from troupe.conditions import Condition
from troupe.kinds import KindSpec

Manifest = dict[str, Any]
SpecT = TypeVar("SpecT", bound=BaseModel)


class Children(Mapping[tuple[str, str], Manifest]):
    """The observed children of one object, keyed by ``(kind, name)``; read-only for hooks."""

    def __init__(self, objects: Mapping[tuple[str, str], Manifest] | None = None) -> None:
        self._objects = dict(objects or {})

    def __getitem__(self, key: tuple[str, str]) -> Manifest:
        return self._objects[key]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._objects)

    def __len__(self) -> int:
        return len(self._objects)

    def of_kind(self, kind: str) -> list[Manifest]:
        """Children of one kind, sorted by name so results do not depend on event order."""
        return [obj for (k, name), obj in sorted(self._objects.items()) if k == kind]


@dataclass(frozen=True)
class ReconcileContext(Generic[SpecT]):
    """One object at one instant: everything a pure builder or status function may look at.

    ``now`` is the reconcile's clock reading; hooks never read the clock themselves, so tests pass any
    instant they like.
    """

    kind: KindSpec
    body: Manifest
    spec: SpecT
    now: datetime
    children: Children = field(default_factory=Children)

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        ns = self.body["metadata"].get("namespace")
        return str(ns) if ns else None

    @property
    def uid(self) -> str:
        return str(self.body["metadata"].get("uid", ""))

    @property
    def generation(self) -> int:
        return int(self.body["metadata"].get("generation", 0))

    @property
    def status(self) -> Manifest:
        status = self.body.get("status") or {}
        return dict(status)

    @property
    def deleting(self) -> bool:
        return bool(self.body["metadata"].get("deletionTimestamp"))


@dataclass
class StatusUpdate:
    """The status an object should have, as computed by ``troupe_aggregate_status``.

    ``fields`` are status fields other than phase, conditions and observedGeneration (which the core
    owns). ``requeue_after`` asks for another reconcile after that many seconds even if nothing changes
    (time-based transitions). ``delete`` asks the core to delete the object itself (end of life).
    """

    phase: str | None = None
    conditions: list[Condition] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    requeue_after: float | None = None
    delete: bool = False
