"""What ``troupe_register_handlers`` gets: the running core's public face, for a plugin's own handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import kopf

from troupe.context import Manifest
from troupe.engine.client import Kube
from troupe.engine.metrics import OperatorMetrics
from troupe.kinds import ChildKind, KindSpec, RelatedKind

#: ``callback(event_type, body)``: ``ADDED`` (also each object of a listing), ``MODIFIED`` or ``DELETED``.
EventCallback = Callable[[str, Manifest], None]


def _not_running(*_: object) -> None:
    raise RuntimeError("only a running troupe process delivers the core's watch events")


@dataclass(frozen=True)
class OperatorHandle:
    """One ``troupe run`` process as its plugins see it.

    ``kopf``: the registry to decorate extra kopf handlers with (timers, daemons, events of resources
    the core does not watch). ``kube``: the process's API client (use it only in handlers, never in
    hooks). ``operators`` and ``kinds``: what this process runs. Events of the kinds the core watches
    come through :meth:`on_event`, never through a second watch of one's own.
    """

    kopf: kopf.OperatorRegistry
    kube: Kube
    operators: tuple[str, ...]
    kinds: tuple[KindSpec, ...]
    _enqueue: Callable[[KindSpec, str | None, str, float], None]
    _objects: Callable[[KindSpec], list[Manifest]]
    _metrics: dict[str, OperatorMetrics]
    _on_event: Callable[[KindSpec | ChildKind | RelatedKind, EventCallback], None] = _not_running
    _on_listed: Callable[[KindSpec | ChildKind | RelatedKind, Callable[[], None]], None] = _not_running

    def enqueue(self, kind: KindSpec, namespace: str | None, name: str, delay: float = 0.0) -> None:
        """Ask for a reconcile of one object of ``kind`` (now, or after ``delay`` seconds)."""
        self._enqueue(kind, namespace, name, delay)

    def objects(self, kind: KindSpec) -> list[Manifest]:
        """The latest known body of every object of ``kind``, from the watch cache (no API call)."""
        return self._objects(kind)

    def metrics(self, operator: str) -> OperatorMetrics:
        """The operator's metrics: its core series, and ``counter``/``histogram``/``registry`` for its own."""
        return self._metrics[operator]

    def on_event(self, kind: KindSpec | ChildKind | RelatedKind, callback: EventCallback) -> None:
        """Be told of every event of a kind the core watches in this process: one of its kinds, or a
        child or related kind of one.

        ``callback(event_type, body)`` is called synchronously, in the core's watch stream, after the
        core's caches took the event (``handle.objects`` already shows it): ``ADDED`` (each object of
        the initial listing, and of a listing again after the stream was away, comes as ``ADDED`` too),
        ``MODIFIED`` or ``DELETED``. It gets every object of the kind in the watched namespaces, also
        those ``--selector`` leaves out. It must return at once and not change ``body``: start a task
        (``asyncio.get_running_loop().create_task``) for anything that waits or calls the API. An
        exception is logged and the event goes on to the other callbacks.

        Raises ``ValueError`` for a kind the core does not watch here (use ``handle.kopf`` for those).
        """
        self._on_event(kind, callback)

    def on_listed(self, kind: KindSpec | ChildKind | RelatedKind, callback: Callable[[], None]) -> None:
        """Be told once the initial listing of a kind the core watches has arrived in every watched
        namespace: ``handle.objects(kind)`` then holds every object there is (the moment to act on the
        whole set at start-up, never earlier). Called once, synchronously, like :meth:`on_event`; again
        only for an optional kind whose API went and came back.

        Raises ``ValueError`` for a kind the core does not watch here.
        """
        self._on_listed(kind, callback)
