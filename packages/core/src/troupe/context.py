"""What a reconcile hands to the hooks, and what the status hook hands back."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, Field

from troupe.conditions import Condition
from troupe.kinds import KindSpec

Manifest = dict[str, Any]
SpecT = TypeVar("SpecT", bound=BaseModel)


class ChildKey(NamedTuple):
    """What identifies a child: API group (``""`` for the core group), kind, namespace, name."""

    group: str
    kind: str
    namespace: str | None
    name: str

    @classmethod
    def of(cls, manifest: Manifest) -> ChildKey:
        meta = manifest.get("metadata") or {}
        group = str(manifest.get("apiVersion", "")).rpartition("/")[0]
        return cls(
            group, str(manifest.get("kind", "")), meta.get("namespace") or None, str(meta.get("name", ""))
        )

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


class Children(Mapping[ChildKey, Manifest]):
    """The observed children of one object, keyed by :class:`ChildKey`; read-only for hooks."""

    def __init__(self, objects: Mapping[ChildKey, Manifest] | None = None) -> None:
        self._objects = dict(objects or {})

    def __getitem__(self, key: ChildKey) -> Manifest:
        return self._objects[key]

    def __iter__(self) -> Iterator[ChildKey]:
        return iter(self._objects)

    def __len__(self) -> int:
        return len(self._objects)

    def of_kind(self, kind: str) -> list[Manifest]:
        """Children of one kind, sorted by namespace and name so results do not depend on event order."""
        found = [(key, obj) for key, obj in self._objects.items() if key.kind == kind]
        return [obj for _, obj in sorted(found, key=lambda item: (item[0].namespace or "", item[0].name))]

    def named(self, kind: str, name: str, namespace: str | None = None) -> Manifest | None:
        """The child of ``kind`` named ``name`` (in ``namespace``, where an owner's children span several)."""
        return next(
            (
                obj
                for key, obj in self._objects.items()
                if key.kind == kind and key.name == name and (namespace is None or key.namespace == namespace)
            ),
            None,
        )


def action_digest(inputs: dict[str, Any]) -> str:
    """The digest of an action's inputs, as recorded in ``status.actions[name].digest``."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]


class ActionRecord(BaseModel):
    """What is known of one long-running step of an object: kept in ``status.actions[name]``."""

    digest: str = Field(description="Hash of the inputs the step ran with.")
    phase: Literal["Running", "Succeeded", "Failed"] = Field(description="Running, Succeeded or Failed.")
    startedAt: str | None = Field(default=None, description="When the step (last) started.")
    finishedAt: str | None = Field(default=None, description="When it ended.")
    message: str = Field(default="", description="The error of a failed step.")
    result: dict[str, Any] = Field(default_factory=dict, description="What the step returned.")

    @property
    def done(self) -> bool:
        return self.phase != "Running"

    def matches(self, inputs: dict[str, Any]) -> bool:
        """Whether this record is of a run with ``inputs`` (a failed run is only retried on new inputs)."""
        return self.digest == action_digest(inputs)


@dataclass(frozen=True)
class AdmissionState:
    """Where an object of a kind with admission stands: admitted, or its place in line (1 is next)."""

    admitted: bool
    position: int = 0
    limit: int | None = None


@dataclass(frozen=True)
class ReconcileContext(Generic[SpecT]):
    """One object at one instant: everything a pure builder or status function may look at.

    ``now`` is the reconcile's clock reading; hooks never read the clock themselves, so tests pass any
    instant they like. ``children`` are the observed children this object owns; ``related`` the objects
    of the kind's related kinds that it references and that exist (a missing one is simply absent).
    ``admission`` says whether a kind with admission may provision now (always admitted without).
    ``referrers`` are the reverse: the objects of the kinds this process reconciles whose
    :attr:`RelatedKind.references` name this object (an Environment naming its Project), keyed by their
    :class:`ChildKey`. An object is reconciled again when its set of referrers changes (one created,
    deleted, or pointed elsewhere), not when a referrer's body changes otherwise.
    """

    kind: KindSpec
    body: Manifest
    spec: SpecT
    now: datetime
    children: Children = field(default_factory=Children)
    related: Children = field(default_factory=Children)
    admission: AdmissionState = field(default_factory=lambda: AdmissionState(admitted=True))
    referrers: Children = field(default_factory=Children)

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
    def actions(self) -> dict[str, ActionRecord]:
        """The recorded long-running steps of this object, by name (``status.actions``)."""
        recorded = self.status.get("actions") or {}
        return {name: ActionRecord.model_validate(record) for name, record in recorded.items()}

    @property
    def deleting(self) -> bool:
        return bool(self.body["metadata"].get("deletionTimestamp"))


@dataclass
class StatusUpdate:
    """The status an object should have, as computed by ``troupe_aggregate_status``.

    ``fields`` are status fields other than phase, conditions and observedGeneration (which the core
    owns). ``requeue_after`` asks for another reconcile after that many seconds even if nothing changes
    (time-based transitions). ``delete`` asks the core to delete the object itself (end of life).
    ``actions`` asks for long-running steps of the kind (``KindSpec.actions``) by name, with their inputs;
    their outcome shows in ``ctx.actions`` on later reconciles.
    """

    phase: str | None = None
    conditions: list[Condition] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    requeue_after: float | None = None
    delete: bool = False
    actions: dict[str, dict[str, Any]] = field(default_factory=dict)
