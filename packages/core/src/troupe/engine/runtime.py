"""``troupe run``: kopf set up for the chosen operators, the generic handlers, probes and metrics."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import kopf
import pluggy
from prometheus_client import CollectorRegistry

from troupe.clock import Clock, utcnow
from troupe.context import ChildKey
from troupe.engine.availability import OptionalKind, crd_name, crd_serves, optional_kinds
from troupe.engine.cache import ObjectKey, version_of
from troupe.engine.client import Kube
from troupe.engine.health import WatchActivity, install_watch_probe, make_app, serve
from troupe.engine.informer import Handler, Informer
from troupe.engine.metrics import OperatorMetrics, PhaseCollector
from troupe.engine.pause import follow_pause, install_pause_probe
from troupe.engine.reconcile import Reconciler
from troupe.engine.selector import parse_selector
from troupe.engine.workqueue import WorkQueue
from troupe.handle import EventCallback, OperatorHandle
from troupe.kinds import ChildKind, KindSpec
from troupe.naming import MANAGED_BY, managed_by
from troupe.plugins import PluginError, collect_kinds

logger = logging.getLogger(__name__)


class ScopeError(PluginError):
    """The operators cannot work in the scope they were asked to watch."""


@dataclass
class RunSettings:
    """What ``troupe run`` was asked for."""

    operators: list[str]
    namespaces: list[str] = field(default_factory=list)  # empty: all namespaces
    standalone: bool = False
    metrics_port: int = 8080
    priority: int | None = None
    watch_stale_after: float = 600.0
    concurrency: int = 16
    #: Only objects of the operators' kinds whose labels match (Kubernetes label selector syntax; empty:
    #: all). Their children and related objects are not filtered: they follow their owners.
    selector: str = ""
    #: Seconds a replica's peering record stays valid: a standby takes over within about this long after
    #: the active replica died (each replica refreshes its record every 1 to 5 s).
    peering_lifetime: int = 10

    @property
    def identity(self) -> str:
        """One name for this process's set of operators: ``workshop``, or ``observatory-workshop``."""
        return "-".join(sorted(self.operators))

    @property
    def finalizer(self) -> str:
        """The core's own finalizer on objects of ``finalize=True`` kinds (kopf holds none)."""
        return f"{self.identity}.troupe.dev/finalizer"

    @property
    def peering_name(self) -> str:
        return f"troupe-{self.identity}"


def kopf_settings(run: RunSettings) -> kopf.OperatorSettings:
    # kopf runs peering, login and third parties' handle.kopf handlers; the core's informers watch every
    # kind of the core, and the core holds its own finalizer, so kopf writes nothing on the objects (a
    # kopf.on.delete handler cost two patches per object and an annotation holding the whole spec, which
    # made a spec near 256 KiB unstorable).
    settings = kopf.OperatorSettings()
    settings.peering.name = run.peering_name
    settings.peering.mandatory = not run.standalone
    settings.peering.standalone = run.standalone
    # Unequal priorities: with equal ones every replica sees a rival and all of them pause.
    settings.peering.priority = run.priority if run.priority is not None else random.randint(1, 10_000)
    settings.peering.lifetime = run.peering_lifetime
    settings.posting.level = logging.WARNING  # our Events are posted by the core, not by kopf's logs
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.inactivity_timeout = 150
    # Watching named namespaces needs no cluster-wide view: without this kopf lists CRDs and namespaces
    # cluster-wide, and a Role-only installation (chart value watchNamespaces) gets 403s and stalls.
    settings.scanning.disabled = bool(run.namespaces)
    settings.networking.request_timeout = 60
    settings.queueing.error_delays = [1, 2, 5, 10, 30, 60, 120]
    return settings


@dataclass
class HandlerRegistry:
    """The core's machinery of one process, as the generic handlers use it."""

    kopf: kopf.OperatorRegistry
    reconciler: Reconciler
    queue: WorkQueue
    kinds: list[KindSpec]
    settings: RunSettings
    metrics: dict[str, OperatorMetrics]
    #: The core's informers of each child and related kind: one per watched namespace, or one for all.
    streams: dict[tuple[str, str], list[Informer]] = field(default_factory=dict)
    #: Which of them belong to optional kinds (started only while their CRD is served).
    optional: dict[tuple[str, str], OptionalKind] = field(default_factory=dict)
    crd_stream: Informer | None = None
    #: Plugins' callbacks (``OperatorHandle.on_event`` / ``on_listed``) by kind (apiVersion, kind).
    listeners: dict[tuple[str, str], list[EventCallback]] = field(default_factory=dict)
    listing_callbacks: dict[tuple[str, str], list[Callable[[], None]]] = field(default_factory=dict)
    _announced: set[tuple[str, str]] = field(default_factory=set)  # kinds whose listing was announced
    _stopping: set[asyncio.Task[None]] = field(default_factory=set)

    def add_streams(
        self, dep: KindSpec | OptionalKind, handler: Handler, label_selector: str | None = None
    ) -> None:
        named: list[str | None] = list(self.settings.namespaces) if dep.namespaced else []
        self.streams[dep.api_version, dep.kind] = [
            Informer(
                self.reconciler.kube,
                api_version=dep.api_version,
                kind=dep.kind,
                plural=dep.plural,
                namespace=namespace,
                handler=handler,
                activity=self.reconciler.activity,
                label_selector=label_selector,
            )
            for namespace in named or [None]
        ]
        if not isinstance(dep, KindSpec) and dep.optional:
            self.optional[dep.api_version, dep.kind] = dep

    def listeners_of(self, ref: tuple[str, str]) -> Handler:
        """The stream handler that calls the plugins' callbacks of a kind (looked up at each event: the
        plugins register theirs after the streams are set up)."""

        def on_object(event: str, obj: dict[str, Any]) -> None:
            for callback in self.listeners.get(ref, ()):
                try:
                    callback(event, obj)
                except Exception:  # a plugin's bug must not keep the event from the others
                    logger.exception("a callback of %s %s failed on a %s event", ref[1], ref[0], event)

        return on_object

    def watched(self, kind: KindSpec | OptionalKind) -> tuple[str, str]:
        ref = (kind.api_version, kind.kind)
        if ref not in self.streams:
            watched = ", ".join(sorted(k for _, k in self.streams))
            raise ValueError(
                f"the core does not watch {kind.kind} ({kind.api_version}) in this process (it watches "
                f"{watched}): register a handler on handle.kopf for it"
            )
        return ref

    def on_event(self, kind: KindSpec | OptionalKind, callback: EventCallback) -> None:
        self.listeners.setdefault(self.watched(kind), []).append(callback)

    def on_listed(self, kind: KindSpec | OptionalKind, callback: Callable[[], None]) -> None:
        self.listing_callbacks.setdefault(self.watched(kind), []).append(callback)

    def listed(self, stream: str) -> None:
        """A stream's initial listing arrived: announce its kind once every namespace's has."""
        activity = self.reconciler.activity
        for ref, informers in self.streams.items():
            if stream not in {i.stream for i in informers} or ref in self._announced:
                continue
            if activity is None or all(activity.has_listed(i.stream) for i in informers):
                self._announced.add(ref)
                kind = next((k for k in self.kinds if (k.api_version, k.kind) == ref and k.reconcile), None)
                if kind is not None and kind.admission is not None:
                    for admitted in self.reconciler.admission_changes(kind):
                        self.queue.enqueue(admitted, reason="admission")
                for callback in self.listing_callbacks.get(ref, ()):
                    try:
                        callback()
                    except Exception:
                        logger.exception("a listing callback of %s %s failed", ref[1], ref[0])

    def start(self) -> None:
        """Start the streams of every kind served now, and the CRD stream that follows the others."""
        for ref, informers in self.streams.items():
            dep = self.optional.get(ref)
            if dep is None or self.reconciler.availability.served(dep):
                for informer in informers:
                    informer.start()
        if self.crd_stream is not None:
            self.crd_stream.start()

    def toggle_streams(self, dep: OptionalKind, served: bool) -> None:
        """An optional kind's CRD came (start its streams) or went (stop them; its objects went too)."""
        if not served:
            self._announced.discard((dep.api_version, dep.kind))  # announced again when it comes back
        for informer in self.streams.get((dep.api_version, dep.kind), []):
            if served:
                informer.start()
            else:
                task = asyncio.create_task(informer.stop(forget=True), name=f"stop {informer.stream}")
                self._stopping.add(task)
                task.add_done_callback(self._stopping.discard)

    async def stop(self) -> None:
        informers = [i for group in self.streams.values() for i in group]
        informers += [self.crd_stream] if self.crd_stream is not None else []
        await asyncio.gather(*(i.stop() for i in informers), *self._stopping, return_exceptions=True)

    def enqueue(self, kind: KindSpec, namespace: str | None, name: str, delay: float = 0.0) -> None:
        self.queue.enqueue(
            ObjectKey(kind, namespace if kind.namespaced else None, name), delay, reason="plugin"
        )

    def objects(self, kind: KindSpec) -> list[dict[str, Any]]:
        return [body for key, body in self.reconciler.objects.items() if key.kind is kind]

    def handle(self) -> OperatorHandle:
        return OperatorHandle(
            kopf=self.kopf,
            kube=self.reconciler.kube,
            operators=tuple(self.settings.operators),
            kinds=tuple(self.kinds),
            _enqueue=self.enqueue,
            _objects=self.objects,
            _metrics=self.metrics,
            _on_event=self.on_event,
            _on_listed=self.on_listed,
        )


def _unique_children(kinds: Sequence[KindSpec]) -> dict[tuple[str, str], ChildKind]:
    return {(c.api_version, c.kind): c for k in kinds for c in k.children}


def register(registry: HandlerRegistry, pm: pluggy.PluginManager) -> None:
    """The generic handlers: object events (kopf) and child, related and CRD events (the core's own
    informers, :attr:`HandlerRegistry.streams`, started by :meth:`HandlerRegistry.start`) into the work
    queue."""
    reg = registry.kopf
    reconciler = registry.reconciler
    queue = registry.queue

    @kopf.on.login(registry=reg, id="troupe-login")
    async def login(**_: Any) -> kopf.ConnectionInfo:
        return await reconciler.kube.connection_info()

    selected = parse_selector(registry.settings.selector)
    managers = sorted(managed_by(op) for op in registry.settings.operators)
    served = [k for k in registry.kinds if k.reconcile]
    primaries = {(k.api_version, k.kind): k for k in served}
    children = _unique_children(served)
    observed = {
        ref
        for ref in children
        if all(c.observe_only for k in served for c in k.children if (c.api_version, c.kind) == ref)
    }
    related = {(r.api_version, r.kind): r for k in served for r in k.related}
    referenced = {(k.group, k.kind): k for k in served}

    def referrers_changed(target: ChildKey) -> None:
        kind = referenced.get((target.group, target.kind))
        if kind is not None:
            queue.enqueue(ObjectKey(kind, target.namespace, target.name), reason="referrers")

    reconciler.on_referrers = referrers_changed
    reconciler.referrer_kinds = {
        (k.group, k.kind): tuple(r for r in served if (k.api_version, k.kind) in _related_refs(r))
        for k in served
    }
    # One stream per kind, as /readyz and the listing gate know streams by kind (plural) and namespace: a
    # kind can be one operator's primary kind and another's child or related kind.
    for ref in {**primaries, **children, **related}:
        handlers: list[Handler] = []
        if ref in primaries:
            handlers.append(_primary_handler(primaries[ref], reconciler, queue, selected))
        if ref in children:
            # Read whole, not filtered by the managed-by label on the server: the name index learns every
            # name taken (a user's object too), which lets a child known free be created without a GET.
            handlers.append(reconciler.names.record)
            on_child = _child_handler(reconciler, queue, registry.kinds)
            handlers.append(_managed_only(on_child, set(managers)))
        if ref in related:
            handlers.append(_related_handler(reconciler, queue))
        handlers.append(registry.listeners_of(ref))  # plugins' callbacks: after the caches took the event
        # Kinds only observed (pods) have no name to know: the server sends only the operators' own, not
        # every pod of the cluster.
        only_ours = ref in observed and ref not in primaries and ref not in related
        selector = f"{MANAGED_BY} in ({','.join(managers)})" if only_ours else None
        registry.add_streams(
            primaries.get(ref) or children.get(ref) or related[ref], _each(handlers), selector
        )
    if optional_kinds(served):
        registry.crd_stream = _crd_informer(registry, served)
    pm.hook.troupe_register_handlers(handle=registry.handle())


def _related_refs(kind: KindSpec) -> set[tuple[str, str]]:
    return {(r.api_version, r.kind) for r in kind.related}


def _managed_only(handler: Handler, managers: set[str]) -> Handler:
    """What a label selector on the operators' managed-by label would deliver: an object that is not
    (or no longer) theirs comes as DELETED."""

    def on_object(event: str, obj: dict[str, Any]) -> None:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        handler(event if labels.get(MANAGED_BY) in managers else "DELETED", obj)

    return on_object


def _each(handlers: list[Handler]) -> Handler:
    if len(handlers) == 1:
        return handlers[0]

    def on_object(event: str, obj: dict[str, Any]) -> None:
        for handler in handlers:
            handler(event, obj)

    return on_object


def _related_handler(reconciler: Reconciler, queue: WorkQueue) -> Handler:
    def on_related(event: str, obj: dict[str, Any]) -> None:
        users = reconciler.related.remove(obj) if event == "DELETED" else reconciler.related.put(obj)
        for user in users:
            queue.enqueue(user, reason="related")

    return on_related


def _crd_informer(registry: HandlerRegistry, kinds: list[KindSpec]) -> Informer:
    """Optional APIs coming and going: their streams start and stop, their dependents are reconciled at
    once, without a restart."""
    reconciler, queue = registry.reconciler, registry.queue
    deps = {crd_name(dep): dep for dep in optional_kinds(kinds)}

    def on_crd(event: str, crd: dict[str, Any]) -> None:
        name = str(crd["metadata"]["name"])
        dep = deps.get(name)
        if dep is None:
            return
        served = event != "DELETED" and crd_serves(crd, dep.version)
        if not reconciler.availability.set(name, served):
            return
        registry.toggle_streams(dep, served)
        for key, _body in reconciler.objects.items():
            if dep in key.kind.watched:
                queue.enqueue(key, reason="api")

    return Informer(
        reconciler.kube,
        api_version="apiextensions.k8s.io/v1",
        kind="CustomResourceDefinition",
        plural="customresourcedefinitions",
        namespace=None,
        handler=on_crd,
        activity=reconciler.activity,
    )


def check_scope(kinds: Sequence[KindSpec], namespaces: Sequence[str]) -> None:
    """Refuse what cannot work when watching named namespaces only, with what to do instead."""
    if not namespaces:
        return
    for kind in kinds:
        spread = [c.kind for c in kind.children if c.namespaced] if not kind.namespaced else []
        if spread:
            raise ScopeError(
                f"{kind.kind} is cluster-scoped and creates {', '.join(spread)} in namespaces of its own, "
                f"which watching only {', '.join(namespaces)} cannot see: run it with --all-namespaces "
                "(chart: leave watchNamespaces empty)"
            )


def _ours_to_release(meta: Mapping[str, Any], reconciler: Reconciler) -> bool:
    """An object the selector does not take (or no longer takes: a label removed) is out of scope, as if
    deleted: never reconciled, its children left as they are; but one being deleted that still holds
    our finalizer is torn down, so it is not left hanging."""
    return bool(meta.get("deletionTimestamp")) and reconciler.finalizer in (meta.get("finalizers") or [])


def _primary_handler(
    kind: KindSpec,
    reconciler: Reconciler,
    queue: WorkQueue,
    selected: Callable[[Mapping[str, str]], bool],
) -> Handler:
    """Objects of a kind this process reconciles: into the object cache and the work queue."""

    def on_object(event: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = ObjectKey(kind, meta.get("namespace") or None, str(meta.get("name", "")))
        in_scope = selected(meta.get("labels") or {}) or _ours_to_release(meta, reconciler)
        if event == "DELETED" or not in_scope:
            reconciler.forget(key)
            queue.forget(key)
        elif reconciler.put(key, obj):
            mine = (key, version_of(obj))
            queue.enqueue(key, reason="object", echo=lambda: mine in reconciler.objects.ours)
        else:  # our own status or finalizer write coming back: the cache has it, nothing is new
            queue.note(key, "object", "ignored")
        # During the initial listing every object is queued anyway, and lining them all up again at each
        # of 1,000 objects cost O(n^2): the line is first taken once the listing is in (registry.listed).
        if kind.admission is not None and reconciler.listed_in(kind.plural, key.namespace):
            for admitted in reconciler.admission_changes(kind):
                queue.enqueue(admitted, reason="admission")

    return on_object


def _child_handler(reconciler: Reconciler, queue: WorkQueue, kinds: list[KindSpec]) -> Handler:
    owners = {f"{k.kind}.{k.group}": k for k in kinds}

    def on_child(event: str, obj: dict[str, Any]) -> None:
        if event == "DELETED":
            removed = reconciler.children.remove(obj)
            affected = {removed} if removed else set()
            echo = None
        else:
            affected = reconciler.children.put(obj)
            mine = (ChildKey.of(obj), version_of(obj))
            echo = lambda: mine in reconciler.children.ours  # noqa: E731
        for owner in affected:
            kind_ref, namespace, name = owner.split("/", 2)
            kind = owners.get(kind_ref)
            if kind is not None:
                key = ObjectKey(kind, namespace or None, name)
                queue.enqueue(key, reason="child", echo=echo, within=kind.batch_window)

    return on_child


def quiet_kopf_objects() -> None:
    """kopf logs a line at INFO for each handler call on each object ("Handler ... succeeded"): 7,000
    lines while a restart lists 1,000 Workshops and their children, a good part of the CPU it spends. Its
    warnings and errors stay; ``--verbose`` (DEBUG) keeps them all."""
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)


async def run(
    pm: pluggy.PluginManager,
    run_settings: RunSettings,
    *,
    clock: Clock = utcnow,
    stop_flag: asyncio.Event | None = None,
    ready: Callable[[HandlerRegistry], None] | None = None,
) -> None:
    """Run the operators until stopped (SIGINT/SIGTERM or ``stop_flag``)."""
    kinds = collect_kinds(pm, run_settings.operators)
    check_scope(kinds, run_settings.namespaces)
    quiet_kopf_objects()
    prom = CollectorRegistry()
    metrics = {op: OperatorMetrics(op, prom) for op in run_settings.operators}
    activity = WatchActivity(stale_after=run_settings.watch_stale_after)
    install_watch_probe(activity)
    kube = await Kube.connect(field_manager=f"troupe-{run_settings.identity}")
    reconciler = Reconciler(
        pm=pm, kube=kube, clock=clock, metrics=metrics, activity=activity, finalizer=run_settings.finalizer
    )
    await reconciler.availability.discover(kube, optional_kinds(kinds))

    def observe(key: Hashable, reason: str, outcome: str) -> None:
        if isinstance(key, ObjectKey):
            metrics[key.kind.operator].enqueues.labels(reason=reason, outcome=outcome).inc()

    queue = WorkQueue(
        reconciler.reconcile,  # type: ignore[arg-type]
        concurrency=run_settings.concurrency,
        observe=observe,
    )
    registry = HandlerRegistry(
        kopf=kopf.OperatorRegistry(),
        reconciler=reconciler,
        queue=queue,
        kinds=kinds,
        settings=run_settings,
        metrics=metrics,
    )
    for op in run_settings.operators:
        prom.register(PhaseCollector(op, functools.partial(reconciler.phase_counts, op)))
    reconciler.actions.done = functools.partial(queue.enqueue, reason="action")

    def listed(stream: str) -> None:
        waiting, reconciler.gated = reconciler.gated, set()
        for key in waiting:
            queue.enqueue(key, reason="listed")
        registry.listed(stream)

    activity.on_listed = listed
    reconciler.actions.handle = registry.handle()
    register(registry, pm)
    # A replica runs no reconcile before kopf's peering has seen that no replica of higher priority is
    # active (kopf starts its own streams paused until then, but our informers list at once).
    peering = None if run_settings.standalone else run_settings.peering_name
    if peering is not None:
        queue.pause()
    pause_followers: list[asyncio.Task[None]] = []

    def found(paused: Any) -> None:
        pause_followers.append(asyncio.create_task(follow_pause(paused, queue, peering), name="pause"))

    install_pause_probe(found)
    registry.start()
    if ready is not None:
        ready(registry)
    runner = await serve(make_app(activity, prom), run_settings.metrics_port)
    logger.info(
        "Troupe %s: kinds %s, %s, metrics and probes on :%d",
        run_settings.identity,
        ", ".join(k.kind for k in kinds),
        f"namespaces {', '.join(run_settings.namespaces)}" if run_settings.namespaces else "all namespaces",
        run_settings.metrics_port,
    )
    try:
        await kopf.operator(
            registry=registry.kopf,
            settings=kopf_settings(run_settings),
            standalone=run_settings.standalone,
            clusterwide=not run_settings.namespaces,
            namespaces=run_settings.namespaces,
            stop_flag=stop_flag,
            memo=kopf.Memo(troupe=registry),
        )
    finally:
        for follower in pause_followers:
            follower.cancel()
        await registry.stop()
        reconciler.actions.close()
        queue.close()
        await runner.cleanup()
        await kube.close()
