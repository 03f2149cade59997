"""Liveness that notices dead watch streams, readiness, and the HTTP server for them and /metrics.

Watch streams have been seen to stall silently (kopf #957, #980, #1276): the process lives but sees no
more events. We record every item each stream yields, the core's informers and kopf's alike (events,
bookmarks, the end of the initial listing), and fail ``/healthz`` when a stream has been quiet longer
than ``stale_after``, so the kubelet restarts the operator. With ``allowWatchBookmarks`` the API server
sends a bookmark at least every minute, and a stream reconnects after its timeout, so a healthy quiet
stream is never that old.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

#: The prefix of kopf's streams' names.
KOPF = "kopf:"


class WatchActivity:
    """When each watch stream last delivered something, and whether its initial listing finished.

    The core's informers (every kind of the core: primary, child, related, CRD) hand each object of a
    listing to their handler before they report the listing's end, so the caches hold the whole
    listing then. kopf's streams (peering, and third parties' own ``handle.kopf`` handlers) are named
    ``kopf:<plural>@<namespace>``, apart from the informers' ``<plural>@<namespace>``.
    """

    def __init__(self, *, stale_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after = stale_after
        self._clock = clock
        self.last_seen: dict[str, float] = {}
        self.listed: set[str] = set()
        #: Called with a stream's name when its initial listing has arrived (objects waiting for it go on).
        self.on_listed: Callable[[str], None] = lambda stream: None

    def seen(self, stream: str, *, listed: bool = False) -> None:
        """A stream delivered something: an object or event, or (``listed``) its listing's end."""
        self.last_seen[stream] = self._clock()
        if listed and stream not in self.listed:
            self.listed.add(stream)
            self.on_listed(stream)

    def forget(self, stream: str) -> None:
        """A stream stopped for good (its kind is no longer served): neither stale nor waited for."""
        self.last_seen.pop(stream, None)
        self.listed.discard(stream)

    def stale(self) -> list[str]:
        now = self._clock()
        return sorted(s for s, at in self.last_seen.items() if now - at > self.stale_after)

    def has_listed(self, stream: str) -> bool:
        return stream in self.listed

    def ready(self) -> bool:
        return bool(self.last_seen) and self.listed >= set(self.last_seen)


def install_watch_probe(activity: WatchActivity) -> None:
    """Wrap kopf's ``continuous_watch`` so each stream reports to ``activity``.

    This reaches into a private kopf module; tests/test_health.py fails if kopf moves it.
    """
    from kopf._cogs.clients import watching

    original = getattr(watching, "_troupe_original", watching.continuous_watch)

    async def continuous_watch(**kwargs: Any) -> AsyncIterator[Any]:
        stream = f"{KOPF}{kwargs['resource'].plural}@{kwargs.get('namespace') or '*'}"
        activity.seen(stream)
        async for item in original(**kwargs):
            activity.seen(stream, listed=item is watching.Bookmark.LISTED)
            yield item

    watching._troupe_original = original  # type: ignore[attr-defined]
    watching.continuous_watch = continuous_watch


def make_app(activity: WatchActivity, registry: CollectorRegistry) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        stale = activity.stale()
        if stale:
            return web.Response(status=503, text=f"watch streams quiet too long: {', '.join(stale)}\n")
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if not activity.ready():
            return web.Response(status=503, text="initial listing not finished\n")
        return web.Response(text="ok\n")

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def serve(app: web.Application, port: int, host: str = "0.0.0.0") -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
