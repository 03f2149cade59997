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
from troupe.engine.availability import crd_name, crd_serves, optional_kinds
from troupe.engine.cache import ObjectKey, version_of
from troupe.engine.client import Kube
from troupe.engine.health import WatchActivity, install_watch_probe, make_app, serve
from troupe.engine.metrics import OperatorMetrics, PhaseCollector
from troupe.engine.reconcile import Reconciler
from troupe.engine.selector import parse_selector
from troupe.engine.workqueue import WorkQueue
from troupe.handle import OperatorHandle
from troupe.kinds import ChildKind, KindSpec, RelatedKind
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
    # kopf only watches (kopf.on.event): the core holds its own finalizer and keeps no copy of the spec,
    # so kopf writes nothing on the objects (a kopf.on.delete handler cost two patches per object and an
    # annotation holding the whole spec, which made a spec near 256 KiB unstorable).
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
        )


def _unique_children(kinds: Sequence[KindSpec]) -> dict[tuple[str, str], ChildKind]:
    return {(c.api_version, c.kind): c for k in kinds for c in k.children}


def register(registry: HandlerRegistry, pm: pluggy.PluginManager) -> None:
    """The generic handlers: object and child events into the work queue, finalizers where declared."""
    reg = registry.kopf
    reconciler = registry.reconciler
    queue = registry.queue

    @kopf.on.login(registry=reg, id="troupe-login")
    async def login(**_: Any) -> kopf.ConnectionInfo:
        return await reconciler.kube.connection_info()

    for kind in registry.kinds:
        if not kind.reconcile:
            continue
        _register_kind(reg, kind, reconciler, queue, parse_selector(registry.settings.selector))
    operators = {managed_by(op) for op in registry.settings.operators}
    served = [k for k in registry.kinds if k.reconcile]
    for child in _unique_children(served).values():
        _register_child(reg, child, reconciler, queue, operators, registry.kinds)
    for related in {(r.api_version, r.kind): r for k in served for r in k.related}.values():
        _register_related(reg, related, reconciler, queue)
    if optional_kinds(served):
        _register_crd_watch(reg, served, reconciler, queue)
    pm.hook.troupe_register_handlers(handle=registry.handle())


def _register_related(
    reg: kopf.OperatorRegistry, related: RelatedKind, reconciler: Reconciler, queue: WorkQueue
) -> None:
    @kopf.on.event(
        related.group, related.version, related.plural, registry=reg, id=f"troupe-related-{related.kind}"
    )
    async def on_related(event: kopf.RawEvent, **_: Any) -> None:
        obj = dict(event["object"])
        reconciler.took(related.plural, event)
        obj.setdefault("apiVersion", related.api_version)
        obj.setdefault("kind", related.kind)
        users = reconciler.related.remove(obj) if event["type"] == "DELETED" else reconciler.related.put(obj)
        for user in users:
            queue.enqueue(user, reason="related")


def _register_crd_watch(
    reg: kopf.OperatorRegistry, kinds: list[KindSpec], reconciler: Reconciler, queue: WorkQueue
) -> None:
    """Optional APIs coming and going: their dependents are reconciled at once, without a restart."""
    deps = {crd_name(dep): dep for dep in optional_kinds(kinds)}

    def watched(name: str, **_: Any) -> bool:
        return name in deps

    @kopf.on.event(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        registry=reg,
        when=watched,
        id="troupe-crds",
    )
    async def on_crd(event: kopf.RawEvent, name: str, **_: Any) -> None:
        dep = deps[name]
        served = event["type"] != "DELETED" and crd_serves(dict(event["object"]), dep.version)
        if not reconciler.availability.set(name, served):
            return
        for key, _body in reconciler.objects.items():
            if dep in key.kind.watched:
                queue.enqueue(key, reason="api")


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


def _ours_to_release(event: kopf.RawEvent, reconciler: Reconciler) -> bool:
    """An object the selector does not take (or no longer takes: a label removed) is out of scope, as if
    deleted: never reconciled, its children left as they are; but one being deleted that still holds
    our finalizer is torn down, so it is not left hanging."""
    meta = event["object"].get("metadata", {})
    return bool(meta.get("deletionTimestamp")) and reconciler.finalizer in (meta.get("finalizers") or [])


def _register_kind(
    reg: kopf.OperatorRegistry,
    kind: KindSpec,
    reconciler: Reconciler,
    queue: WorkQueue,
    selected: Callable[[Mapping[str, str]], bool],
) -> None:
    @kopf.on.event(kind.group, kind.version, kind.plural, registry=reg, id=f"troupe-{kind.kind}")
    async def on_object(
        event: kopf.RawEvent, name: str, namespace: str | None, labels: kopf.Labels, **_: Any
    ) -> None:
        reconciler.took(kind.plural, event)
        key = ObjectKey(kind, namespace, name)
        if event["type"] == "DELETED" or not (selected(labels) or _ours_to_release(event, reconciler)):
            reconciler.forget(key)
            queue.forget(key)
        elif reconciler.put(key, body := dict(event["object"])):
            mine = (key, version_of(body))
            queue.enqueue(key, reason="object", echo=lambda: mine in reconciler.objects.ours)
        else:  # our own status or finalizer write coming back: the cache has it, nothing is new
            queue.note(key, "object", "ignored")
        for admitted in reconciler.admission_changes(kind):
            queue.enqueue(admitted, reason="admission")


def _register_child(
    reg: kopf.OperatorRegistry,
    child: ChildKind,
    reconciler: Reconciler,
    queue: WorkQueue,
    managers: set[str],
    kinds: list[KindSpec],
) -> None:
    owners = {f"{k.kind}.{k.group}": k for k in kinds}

    # Every object of the kind comes here, not only ours (no kopf ``when`` filter): the start-up gate
    # counts each object of the listing in, and kopf would evaluate a filter for each of them anyway.
    @kopf.on.event(child.group, child.version, child.plural, registry=reg, id=f"troupe-child-{child.kind}")
    async def on_child(event: kopf.RawEvent, labels: kopf.Labels, **_: Any) -> None:
        reconciler.took(child.plural, event)
        if labels.get(MANAGED_BY) not in managers:
            return
        obj = dict(event["object"])
        if event["type"] == "DELETED":
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
                queue.enqueue(ObjectKey(kind, namespace or None, name), reason="child", echo=echo)


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

    activity.on_listed = listed
    served = [k for k in kinds if k.reconcile]
    activity.counted = {k.plural for k in served} | {d.plural for k in served for d in k.watched}
    reconciler.actions.handle = registry.handle()
    register(registry, pm)
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
        reconciler.actions.close()
        queue.close()
        await runner.cleanup()
        await kube.close()
