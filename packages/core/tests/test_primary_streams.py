"""The primary kinds on the core's informers, plugins' callbacks on the core's streams, and referrers."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import kopf
import pytest
from prometheus_client import CollectorRegistry

from troupe import (
    ChildKey,
    KindSpec,
    Manifest,
    OperatorHandle,
    ReconcileContext,
    RelatedKind,
    SpecModel,
    hookimpl,
)
from troupe.engine.cache import ObjectKey
from troupe.engine.health import WatchActivity
from troupe.engine.informer import Informer
from troupe.engine.metrics import OperatorMetrics
from troupe.engine.reconcile import Reconciler
from troupe.engine.runtime import HandlerRegistry, RunSettings, register
from troupe.engine.workqueue import WorkQueue
from troupe.plugins import get_plugin_manager
from troupe.testing import MemoryKube


class Spec(SpecModel):
    board: str = ""


def board_of(body: Manifest) -> list[tuple[str | None, str]]:
    name = (body.get("spec") or {}).get("board")
    return [(body["metadata"].get("namespace"), name)] if name else []


BOARD = KindSpec(operator="games", group="games.example", version="v1", kind="Board", plural="boards",
                 spec_model=Spec)  # fmt: skip
PIECE = KindSpec(
    operator="games",
    group="games.example",
    version="v1",
    kind="Piece",
    plural="pieces",
    spec_model=Spec,
    related=(RelatedKind("games.example/v1", "Board", "boards", references=board_of),),
)


class Games:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, int]] = []
        self.listed: list[int] = []

    @hookimpl
    def troupe_kinds(self) -> list[KindSpec]:
        return [BOARD, PIECE]

    @hookimpl
    def troupe_register_handlers(self, handle: OperatorHandle) -> None:
        def on_piece(event: str, body: Manifest) -> None:
            # told after the cache took the event: the cache already shows it
            self.events.append((event, body["metadata"]["name"], len(handle.objects(PIECE))))

        handle.on_event(PIECE, on_piece)
        handle.on_listed(PIECE, lambda: self.listed.append(len(handle.objects(PIECE))))


def body(name: str, board: str = "", version: str = "1", **meta: Any) -> Manifest:
    return {
        "apiVersion": "games.example/v1",
        "kind": "Piece" if board else "Board",
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": version, "uid": name, **meta},
        "spec": {"board": board} if board else {},
    }


@pytest.fixture
def games() -> Games:
    return Games()


def registered(
    pm: Any, reconciler: Reconciler, queue: WorkQueue, kinds: list[KindSpec], settings: RunSettings
) -> HandlerRegistry:
    """The generic handlers of ``kinds`` registered, with the queue paused (nothing runs)."""
    queue.pause()
    registry = HandlerRegistry(
        kopf=kopf.OperatorRegistry(),
        reconciler=reconciler,
        queue=queue,
        kinds=kinds,
        settings=settings,
        metrics=reconciler.metrics,
    )
    assert reconciler.activity is not None
    reconciler.activity.on_listed = registry.listed
    register(registry, pm)
    return registry


@pytest.fixture
def setup(kube: MemoryKube, clock: Any, games: Games) -> Any:
    pm = get_plugin_manager(load_entrypoints=False, plugins=[games])
    metrics = {"games": OperatorMetrics("games", CollectorRegistry())}
    activity = WatchActivity(stale_after=60)
    reconciler = Reconciler(pm=pm, kube=kube, clock=clock, metrics=metrics, activity=activity)  # type: ignore[arg-type]
    queued: list[tuple[Hashable, str]] = []

    async def worker(key: Hashable) -> None:
        return None

    def observe(key: Hashable, reason: str, outcome: str) -> None:
        if outcome in ("run", "pending"):
            queued.append((key, reason))

    queue = WorkQueue(worker, observe=observe)
    registry = registered(
        pm, reconciler, queue, [BOARD, PIECE], RunSettings(operators=["games"], selector="team!=b")
    )
    streams = {i.stream: i for group in registry.streams.values() for i in group}
    yield registry, streams, queued
    queue.close()


async def test_each_primary_kind_has_an_informer_of_the_core(setup: Any) -> None:
    registry, streams, _ = setup
    assert {"boards@*", "pieces@*"} <= set(streams)
    assert all(isinstance(i, Informer) for i in streams.values())
    assert not registry.kopf._watching.get_all_handlers(), "kopf watches no kind of ours"


async def test_primary_events_fill_the_cache_and_the_queue_and_honour_the_selector(setup: Any) -> None:
    registry, streams, queued = setup
    pieces, reconciler = streams["pieces@*"], registry.reconciler
    key = ObjectKey(PIECE, "ns", "p")
    pieces.handler("ADDED", body("p"))
    assert reconciler.objects.get(key) is not None and (key, "object") in queued
    queued.clear()
    pieces.handler("MODIFIED", body("p"))  # the same version again: nothing new
    assert not queued
    # the selector no longer takes it: out of scope, as if deleted
    pieces.handler("MODIFIED", body("p", version="2", labels={"team": "b"}))
    assert reconciler.objects.get(key) is None
    # unless it is being deleted and holds our finalizer: then it is torn down
    deleting = body("p", version="3", labels={"team": "b"}, deletionTimestamp="2026-01-01T00:00:00Z")
    deleting["metadata"]["finalizers"] = [reconciler.finalizer]
    pieces.handler("MODIFIED", deleting)
    assert reconciler.objects.get(key) is not None
    pieces.handler("DELETED", deleting)
    assert reconciler.objects.get(key) is None


async def test_plugins_are_told_of_events_after_the_cache_and_of_the_listing_once(
    setup: Any, games: Games
) -> None:
    registry, streams, _ = setup
    pieces = streams["pieces@*"]
    pieces.handler("ADDED", body("a", board="x"))
    pieces.handler("ADDED", body("b", board="x"))
    assert games.listed == []
    registry.reconciler.activity.seen("pieces@*", listed=True)
    pieces.handler("DELETED", body("a", board="x"))
    registry.reconciler.activity.seen("pieces@*", listed=True)  # a relisting: not announced again
    assert games.events == [("ADDED", "a", 1), ("ADDED", "b", 2), ("DELETED", "a", 1)]
    assert games.listed == [2]


async def test_a_kind_the_core_does_not_watch_is_refused_with_what_to_do(setup: Any) -> None:
    registry, _, _ = setup
    other = KindSpec(operator="x", group="x.example", version="v1", kind="Other", plural="others",
                     spec_model=Spec)  # fmt: skip
    with pytest.raises(ValueError, match=r"does not watch Other .*handle\.kopf"):
        registry.handle().on_event(other, lambda event, body: None)


async def test_a_failing_callback_leaves_the_others_and_the_stream(setup: Any, games: Games) -> None:
    registry, streams, _ = setup

    def broken(event: str, body: Manifest) -> None:
        raise RuntimeError("a plugin's bug")

    registry.listeners[PIECE.api_version, PIECE.kind].insert(0, broken)
    streams["pieces@*"].handler("ADDED", body("a", board="x"))
    assert games.events == [("ADDED", "a", 1)]


def referrers(registry: HandlerRegistry, name: str) -> list[str]:
    key = ObjectKey(BOARD, "ns", name)
    ctx: ReconcileContext[Any] = registry.reconciler.context(key, body(name))
    return [k.name for k in ctx.referrers]


async def test_referrers_are_known_and_a_change_of_them_reconciles_the_referenced_object(setup: Any) -> None:
    registry, streams, queued = setup
    pieces, boards = streams["pieces@*"], streams["boards@*"]
    x, y = ObjectKey(BOARD, "ns", "x"), ObjectKey(BOARD, "ns", "y")
    boards.handler("ADDED", body("x"))
    boards.handler("ADDED", body("y"))
    queued.clear()
    assert referrers(registry, "x") == []
    pieces.handler("ADDED", body("a", board="x"))
    assert (x, "referrers") in queued and referrers(registry, "x") == ["a"]
    pieces.handler("ADDED", body("b", board="x"))
    assert sorted(referrers(registry, "x")) == ["a", "b"]
    queued.clear()
    pieces.handler("MODIFIED", body("b", board="x", version="2", labels={"new": "label"}))
    assert not [k for k, reason in queued if reason == "referrers"], "same referrers: no reconcile"
    pieces.handler("MODIFIED", body("b", board="y", version="3"))  # pointed at another board
    assert {(x, "referrers"), (y, "referrers")} <= set(queued)
    assert referrers(registry, "x") == ["a"] and referrers(registry, "y") == ["b"]
    queued.clear()
    pieces.handler("DELETED", body("a", board="x"))
    assert (x, "referrers") in queued and referrers(registry, "x") == []
    # the referrers are keyed as any object: kind and name
    ctx = registry.reconciler.context(y, body("y"))
    assert list(ctx.referrers) == [ChildKey("games.example", "Piece", "ns", "b")]


async def test_a_referenced_object_waits_for_the_listing_of_its_referrers(setup: Any) -> None:
    registry, _, _ = setup
    activity, key = registry.reconciler.activity, ObjectKey(BOARD, "ns", "x")
    activity.seen("boards@*", listed=True)
    assert not registry.reconciler.listed(key), "the Pieces naming it are not all known yet"
    activity.seen("pieces@*", listed=True)
    assert registry.reconciler.listed(key)


async def test_the_admission_line_is_taken_once_the_listing_is_in_not_at_each_listed_object(
    kube: MemoryKube, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from troupe import Admission

    queued = replace(PIECE, admission=Admission(limit=lambda related: 1, holding=lambda b: True,
                                                 waiting=lambda b: False))  # fmt: skip

    class Queued(Games):
        @hookimpl
        def troupe_kinds(self) -> list[KindSpec]:
            return [BOARD, queued]

    pm = get_plugin_manager(load_entrypoints=False, plugins=[Queued()])
    metrics = {"games": OperatorMetrics("games", CollectorRegistry())}
    activity = WatchActivity(stale_after=60)
    reconciler = Reconciler(pm=pm, kube=kube, clock=clock, metrics=metrics, activity=activity)  # type: ignore[arg-type]
    queue = WorkQueue(lambda key: None)  # type: ignore[arg-type,return-value]
    registry = registered(pm, reconciler, queue, [BOARD, queued], RunSettings(operators=["games"]))
    lined: list[KindSpec] = []
    original = reconciler.admission_changes
    monkeypatch.setattr(reconciler, "admission_changes", lambda kind: lined.append(kind) or original(kind))
    pieces = next(i for i in registry.streams[queued.api_version, queued.kind])
    for i in range(5):
        pieces.handler("ADDED", body(f"p{i}", board="x"))
    assert lined == []
    activity.seen("pieces@*", listed=True)
    assert lined == [queued]
    pieces.handler("MODIFIED", body("p0", board="x", version="2"))
    assert lined == [queued, queued]
    queue.close()


async def test_an_object_listed_before_what_it_waits_for_starts_no_run_until_that_is_in(setup: Any) -> None:
    registry, streams, queued = setup
    activity, key = registry.reconciler.activity, ObjectKey(PIECE, "ns", "p")
    streams["pieces@*"].handler("ADDED", body("p", board="x"))  # the Boards are not listed yet
    assert key in registry.reconciler.gated and key not in registry.queue._running
    activity.seen("pieces@*", listed=True)
    activity.seen("boards@*", listed=True)
    assert key in registry.queue._running and (key, "listed") in queued
    streams["pieces@*"].handler("MODIFIED", body("p", board="x", version="2"))  # now: queued at once
    assert queued[-1] == (key, "object")
