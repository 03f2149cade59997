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


def test_a_listing_is_finished_at_its_end_and_announced_once() -> None:
    # The informers hand each object of a listing to the caches before they report its end.
    activity = WatchActivity(stale_after=60)
    arrived: list[str] = []
    activity.on_listed = arrived.append
    activity.seen("pods@*")
    assert not activity.has_listed("pods@*") and not activity.ready()
    activity.seen("pods@*", listed=True)
    assert activity.has_listed("pods@*") and arrived == ["pods@*"] and activity.ready()
    activity.seen("pods@*", listed=True)  # a relisting after a 410 announces nothing again
    assert arrived == ["pods@*"]
    activity.seen("kopf:kopfpeerings@*")  # a kopf stream (peering) is waited for too
    assert not activity.ready()
    activity.seen("kopf:kopfpeerings@*", listed=True)
    assert activity.ready()
    activity.forget("pods@*")  # its kind went: a new listing is announced when it comes back
    activity.seen("pods@*", listed=True)
    assert arrived == ["pods@*", "kopf:kopfpeerings@*", "pods@*"]
