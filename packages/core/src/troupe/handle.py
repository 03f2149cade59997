"""What ``troupe_register_handlers`` gets: the running core's public face, for a plugin's own handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import kopf

from troupe.context import Manifest
from troupe.engine.client import Kube
from troupe.engine.metrics import OperatorMetrics
from troupe.kinds import KindSpec


@dataclass(frozen=True)
class OperatorHandle:
    """One ``troupe run`` process as its plugins see it.

    ``kopf``: the registry to decorate extra kopf handlers with (timers, daemons, other resources'
    events). ``kube``: the process's API client (use it only in handlers, never in hooks). ``operators``
    and ``kinds``: what this process runs.
    """

    kopf: kopf.OperatorRegistry
    kube: Kube
    operators: tuple[str, ...]
    kinds: tuple[KindSpec, ...]
    _enqueue: Callable[[KindSpec, str | None, str, float], None]
    _objects: Callable[[KindSpec], list[Manifest]]
    _metrics: dict[str, OperatorMetrics]

    def enqueue(self, kind: KindSpec, namespace: str | None, name: str, delay: float = 0.0) -> None:
        """Ask for a reconcile of one object of ``kind`` (now, or after ``delay`` seconds)."""
        self._enqueue(kind, namespace, name, delay)

    def objects(self, kind: KindSpec) -> list[Manifest]:
        """The latest known body of every object of ``kind``, from the watch cache (no API call)."""
        return self._objects(kind)

    def metrics(self, operator: str) -> OperatorMetrics:
        """The operator's metrics: its core series, and ``counter``/``histogram``/``registry`` for its own."""
        return self._metrics[operator]
