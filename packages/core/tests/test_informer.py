"""The informer's list/watch logic against a scripted API (pure unit); e2e/test_informer.py runs it
against the real API server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from troupe.engine import cache
from troupe.engine import informer as informer_module
from troupe.engine.client import ApiException, Kube, NotFound
from troupe.engine.health import WatchActivity
from troupe.engine.informer import Informer


def pod(name: str, version: str, namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": version}}


class ScriptedKube:
    """Answers LISTs from ``pages`` (or raises what is queued there) and WATCHes from ``watches``."""

    def __init__(self) -> None:
        self.pages: list[Any] = []
        self.watches: list[Any] = []
        self.lists: list[dict[str, str]] = []
        self.watched: list[dict[str, str]] = []
        self.done = asyncio.Event()

    async def request(self, method: str, path: str, *, query: dict[str, str]) -> dict[str, Any]:
        assert method == "GET" and path == "/api/v1/namespaces/ns/pods"
        self.lists.append(dict(query))
        answer = self.pages.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return cast(dict[str, Any], answer)

    async def watch(self, path: str, query: dict[str, str], *, read_timeout: float) -> AsyncIterator[Any]:
        self.watched.append(dict(query))
        if not self.watches:
            self.done.set()
            await asyncio.Event().wait()  # the stream stays open and quiet
        script = self.watches.pop(0)
        if isinstance(script, Exception):
            raise script
        for event in script:
            yield event


Events = list[tuple[str, str]]


def make(kube: ScriptedKube, events: Events, activity: WatchActivity | None = None) -> Informer:
    return Informer(
        cast(Kube, kube),
        api_version="v1",
        kind="Pod",
        plural="pods",
        namespace="ns",
        handler=lambda kind, obj: events.append((kind, obj["metadata"]["name"])),
        activity=activity,
        label_selector="app=x",
    )


async def run_until_quiet(informer: Informer, kube: ScriptedKube) -> None:
    informer.start()
    await asyncio.wait_for(kube.done.wait(), 5)
    await informer.stop()


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(informer_module, "BACKOFF", (0.001, 0.002))
    monkeypatch.setattr(informer_module, "UNSERVED_BACKOFF", (0.001, 0.002))


async def test_lists_page_by_page_then_watches_from_the_listing() -> None:
    kube = ScriptedKube()
    kube.pages = [
        {"items": [pod("a", "1")], "metadata": {"continue": "tok"}},
        {"items": [pod("b", "2")], "metadata": {"resourceVersion": "10"}},
    ]
    kube.watches = [
        [
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "11"}}},
            {"type": "MODIFIED", "object": pod("a", "12")},
        ]
    ]
    events: list[tuple[str, str]] = []
    activity = WatchActivity(stale_after=60)
    informer = make(kube, events, activity)
    await run_until_quiet(informer, kube)
    assert events == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a")]
    assert kube.lists == [
        {"labelSelector": "app=x", "limit": "500"},
        {"labelSelector": "app=x", "limit": "500", "continue": "tok"},
    ]
    assert kube.watched[0]["resourceVersion"] == "10" and kube.watched[0]["allowWatchBookmarks"] == "true"
    assert kube.watched[1]["resourceVersion"] == "12"  # reconnected from the last version seen
    assert kube.watched[0]["labelSelector"] == "app=x"
    assert activity.ready() is False  # stopped: forgotten, neither stale nor waited for
    assert "pods@ns" not in activity.last_seen


async def test_listing_reports_listed_after_every_object_is_delivered() -> None:
    kube = ScriptedKube()
    kube.pages = [{"items": [pod("a", "1")], "metadata": {"resourceVersion": "1"}}]
    activity = WatchActivity(stale_after=60)
    seen_when_listed: list[int] = []
    events: list[tuple[str, str]] = []
    activity.on_listed = lambda stream: seen_when_listed.append(len(events))
    informer = make(kube, events, activity)
    informer.start()
    await asyncio.wait_for(kube.done.wait(), 5)
    assert activity.has_listed("pods@ns") and activity.ready()
    assert seen_when_listed == [1]
    await informer.stop()


async def test_an_expired_version_relists_and_deletes_what_vanished_meanwhile() -> None:
    kube = ScriptedKube()
    kube.pages = [
        {"items": [pod("a", "1"), pod("b", "2")], "metadata": {"resourceVersion": "2"}},
        {"items": [pod("b", "5"), pod("c", "6")], "metadata": {"resourceVersion": "6"}},
    ]
    kube.watches = [[{"type": "ERROR", "object": {"code": 410, "message": "too old resource version"}}]]
    events: list[tuple[str, str]] = []
    await run_until_quiet(make(kube, events), kube)
    assert events == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "b"), ("ADDED", "c"), ("DELETED", "a")]


async def test_a_watch_answered_410_relists_too() -> None:
    kube = ScriptedKube()
    kube.pages = [
        {"items": [pod("a", "1")], "metadata": {"resourceVersion": "1"}},
        ApiException(status=410, reason="Gone"),  # the continue token of a listing expired
        {"items": [], "metadata": {"resourceVersion": "9"}},
    ]
    kube.watches = [[{"type": "ERROR", "object": {"code": 410}}]]
    events: list[tuple[str, str]] = []
    await run_until_quiet(make(kube, events), kube)
    assert events == [("ADDED", "a"), ("DELETED", "a")]
    assert kube.watched[-1]["resourceVersion"] == "9"


async def test_errors_are_retried_with_a_warning_and_unserved_kinds_until_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kube = ScriptedKube()
    kube.pages = [
        NotFound("/api/v1/namespaces/ns/pods"),
        ApiException(status=500, reason="Internal", body="etcd"),
        {"items": [pod("a", "1")], "metadata": {"resourceVersion": "1"}},
    ]
    kube.watches = [ConnectionResetError("reset"), []]
    events: list[tuple[str, str]] = []
    await run_until_quiet(make(kube, events), kube)
    assert events == [("ADDED", "a")]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 3 and "not served yet" in warnings[0]
    assert "500 Internal: etcd" in warnings[1] and "ConnectionResetError: reset" in warnings[2]
    assert not any(r.exc_info for r in caplog.records)


async def test_a_failing_handler_does_not_stop_the_stream(caplog: pytest.LogCaptureFixture) -> None:
    kube = ScriptedKube()
    kube.pages = [{"items": [pod("bad", "1"), pod("good", "2")], "metadata": {"resourceVersion": "2"}}]
    taken: list[str] = []

    def handler(kind: str, obj: dict[str, Any]) -> None:
        if obj["metadata"]["name"] == "bad":
            raise ValueError("a bug")
        taken.append(obj["metadata"]["name"])

    informer = make(kube, [])
    informer.handler = handler
    await run_until_quiet(informer, kube)
    assert taken == ["good"] and "could not be handled" in caplog.text


async def test_stopping_for_good_deletes_every_known_object() -> None:
    kube = ScriptedKube()
    kube.pages = [{"items": [pod("a", "1"), pod("b", "2")], "metadata": {"resourceVersion": "2"}}]
    events: list[tuple[str, str]] = []
    informer = make(kube, events)
    informer.start()
    await asyncio.wait_for(kube.done.wait(), 5)
    await informer.stop(forget=True)
    assert events[2:] == [("DELETED", "a"), ("DELETED", "b")]
    assert informer.version is None and not informer.known


async def test_items_get_their_api_version_and_kind() -> None:
    kube = ScriptedKube()
    kube.pages = [{"items": [pod("a", "1")], "metadata": {"resourceVersion": "1"}}]
    bodies: list[dict[str, Any]] = []
    informer = make(kube, [])
    informer.handler = lambda kind, obj: bodies.append(obj)
    await run_until_quiet(informer, kube)
    assert bodies[0]["apiVersion"] == "v1" and bodies[0]["kind"] == "Pod"


async def test_a_stream_that_never_lists_keeps_readiness_off_and_goes_stale() -> None:
    kube = ScriptedKube()
    kube.pages = [ApiException(status=403, reason="Forbidden")] * 50
    ticks = [0.0]
    activity = WatchActivity(stale_after=60, clock=lambda: ticks[0])
    informer = make(kube, [], activity)
    informer.start()
    await asyncio.sleep(0.05)
    assert not activity.ready() and activity.stale() == []
    ticks[0] = 61
    assert activity.stale() == ["pods@ns"]
    await informer.stop()


async def test_only_the_initial_listing_leaves_the_sharing_of_strings_for_later() -> None:
    kube = ScriptedKube()
    kube.pages = [
        {"items": [pod("a", "1")], "metadata": {"resourceVersion": "1"}},
        {"items": [pod("a", "1"), pod("b", "3")], "metadata": {"resourceVersion": "3"}},  # after a 410
    ]
    kube.watches = [[{"type": "ERROR", "object": {"code": 410}}]]
    kept: list[bool] = []  # per object delivered: did the cache leave its strings for later?

    def unshared(body: dict[str, Any]) -> bool:
        return any(waiting is body for waiting in cache._unshared)

    informer = Informer(
        cast(Kube, kube),
        api_version="v1",
        kind="Pod",
        plural="pods",
        namespace="ns",
        handler=lambda kind, obj: kept.append(unshared(cache.trimmed(obj))),
        activity=WatchActivity(stale_after=60),
    )
    await run_until_quiet(informer, kube)
    assert kept == [True, False, False]  # the listing start-up waits for; not a listing again
    while cache.share_some():
        pass
