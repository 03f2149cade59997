"""Liveness that notices dead watch streams, readiness, and the HTTP server for them and /metrics.

kopf's watch streams have been seen to stall silently (kopf #957, #980, #1276): the process lives but
sees no more events. We record every item each stream yields (events, bookmarks, the end of the initial
listing) and fail ``/healthz`` when a stream has been quiet longer than ``stale_after``, so the kubelet
restarts the operator. With ``allowWatchBookmarks`` the API server sends a bookmark at least every
minute, and kopf reconnects after its inactivity timeout, so a healthy quiet stream is never that old.
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

    The core's own informers (child, related and CRD kinds) deliver each object before they report the
    listing's end: their listing is finished then. kopf's streams (the primary kinds) yield the listing's
    objects, then its end (a bookmark), and hand each object to a task of its own that calls our handler
    later: at the end of the listing many objects are not in our caches yet. For those kinds
    (``counted``: plurals), a listing is finished only once the handlers took in each of its objects
    (:meth:`took`). kopf's streams are named ``kopf:<plural>@<namespace>``, apart from the informers'
    ``<plural>@<namespace>``: a kind can be one operator's primary kind and another's related kind.
    """

    def __init__(self, *, stale_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after = stale_after
        self._clock = clock
        self.last_seen: dict[str, float] = {}
        self.listed: set[str] = set()
        self.counted: set[str] = set()
        self._ended: set[str] = set()  # the listing's end came through the stream
        # the uids of the objects the initial listing yielded that our handlers have not taken in yet
        self._expected: dict[str, set[str]] = {}
        #: Called with a stream's name when its initial listing has arrived (objects waiting for it go on).
        self.on_listed: Callable[[str], None] = lambda stream: None

    def seen(self, stream: str, *, listed: bool = False, uid: str | None = None) -> None:
        """A stream delivered something: an object of its listing (``uid``), or the listing's end."""
        self.last_seen[stream] = self._clock()
        counted = stream.partition("@")[0].removeprefix(KOPF) in self.counted
        if uid is not None and stream not in self._ended and counted:
            self._expected.setdefault(stream, set()).add(uid)
        if listed and stream not in self._ended:
            self._ended.add(stream)
            self._finish(stream)

    def took(self, plural: str, namespace: str | None, uid: str) -> None:
        """A handler took in an object of a kopf stream's listing."""
        everywhere = f"{KOPF}{plural}@*"
        stream = everywhere if everywhere in self.last_seen else f"{KOPF}{plural}@{namespace or '*'}"
        expected = self._expected.get(stream)
        if expected is not None and stream not in self.listed:
            expected.discard(uid)  # the stream yields an object before kopf's task hands it to us
            self._finish(stream)

    def _finish(self, stream: str) -> None:
        if stream in self._ended and not self._expected.get(stream):
            self.listed.add(stream)
            self._expected.pop(stream, None)
            self.on_listed(stream)

    def forget(self, stream: str) -> None:
        """A stream stopped for good (its kind is no longer served): neither stale nor waited for."""
        self.last_seen.pop(stream, None)
        self.listed.discard(stream)
        self._ended.discard(stream)
        self._expected.pop(stream, None)

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
            if isinstance(item, watching.Bookmark):
                activity.seen(stream, listed=item is watching.Bookmark.LISTED)
            else:  # an object of the listing (type None), or a watch event
                uid = item["object"].get("metadata", {}).get("uid") if item.get("type") is None else None
                activity.seen(stream, uid=uid)
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
