from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from kopf._cogs.clients import watching
from prometheus_client import CollectorRegistry

from troupe.engine.health import WatchActivity, install_watch_probe, make_app


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_kopf_still_has_what_the_probe_wraps() -> None:
    # If kopf renames these, the liveness probe silently stops seeing streams: fail loudly here.
    assert callable(watching.continuous_watch)
    assert "continuous_watch" in watching.infinite_watch.__code__.co_names
    assert watching.Bookmark.LISTED


async def test_probe_records_stream_items(monkeypatch: Any) -> None:
    class Resource:
        plural = "workshops"

    async def fake(**_: Any) -> Any:
        yield {"type": None, "object": {}}
        yield watching.Bookmark.LISTED
        yield {"type": "BOOKMARK", "object": {}}

    monkeypatch.setattr(watching, "continuous_watch", fake)
    monkeypatch.delattr(watching, "_troupe_original", raising=False)
    ticker = Ticker()
    activity = WatchActivity(stale_after=60, clock=ticker)
    install_watch_probe(activity)
    items = [i async for i in watching.continuous_watch(resource=Resource(), namespace=None)]
    assert len(items) == 3
    assert activity.ready() and activity.last_seen == {"kopf:workshops@*": 0.0}
    ticker.now = 61
    assert activity.stale() == ["kopf:workshops@*"]


async def test_endpoints() -> None:
    ticker = Ticker()
    activity = WatchActivity(stale_after=60, clock=ticker)
    client = TestClient(TestServer(make_app(activity, CollectorRegistry())))
    await client.start_server()
    try:
        assert (await client.get("/readyz")).status == 503
        activity.seen("pods@*", listed=True)
        assert (await client.get("/readyz")).status == 200
        assert (await client.get("/healthz")).status == 200
        ticker.now = 120
        resp = await client.get("/healthz")
        assert resp.status == 503 and "pods@*" in await resp.text()
        assert (await client.get("/metrics")).status == 200
    finally:
        await client.close()


def test_kopf_logs_no_line_per_handler_call_unless_verbose() -> None:
    import logging

    from troupe.engine.runtime import quiet_kopf_objects

    root, objects = logging.getLogger(), logging.getLogger("kopf.objects")
    level, objects_level = root.level, objects.level
    try:
        root.setLevel(logging.INFO)
        objects.setLevel(logging.NOTSET)
        quiet_kopf_objects()
        assert not objects.isEnabledFor(logging.INFO) and objects.isEnabledFor(logging.WARNING)
        root.setLevel(logging.DEBUG)
        objects.setLevel(logging.NOTSET)
        quiet_kopf_objects()
        assert objects.isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(level)
        objects.setLevel(objects_level)


def test_a_listing_is_finished_once_the_handlers_took_in_each_of_its_objects() -> None:
    # kopf's stream ends a listing before its per-object tasks hand the objects to our handlers: until
    # they did, a listed child would look absent to a reconcile.
    activity = WatchActivity(stale_after=60)
    activity.counted = {"pods"}
    arrived: list[str] = []
    activity.on_listed = arrived.append
    activity.seen("kopf:pods@*", uid="a")
    activity.seen("kopf:pods@*", uid="b")
    activity.seen("kopf:pods@*", uid="a")  # the listing restarted after a dropped connection
    activity.seen("kopf:pods@*", listed=True)
    assert not activity.has_listed("kopf:pods@*") and not activity.ready()
    activity.took("pods", "ns", "a")
    assert not activity.has_listed("kopf:pods@*")
    activity.took("pods", "ns", "b")
    assert activity.has_listed("kopf:pods@*") and arrived == ["kopf:pods@*"]
    activity.took("pods", "ns", "c")  # a relisting later changes nothing
    assert arrived == ["kopf:pods@*"]
    activity.seen("kopf:kopfpeerings@*", uid="p")  # a stream no handler of ours counts: its end is enough
    activity.seen("kopf:kopfpeerings@*", listed=True)
    assert activity.has_listed("kopf:kopfpeerings@*") and activity.ready()
    named = WatchActivity(stale_after=60)  # watching named namespaces: one stream per namespace
    named.counted = {"pods"}
    named.seen("kopf:pods@ns2", uid="x")
    named.seen("kopf:pods@ns2", listed=True)
    named.took("pods", "ns2", "x")
    assert named.has_listed("kopf:pods@ns2")
