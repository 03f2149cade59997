"""The core's own watch streams (informers): of the kinds it reconciles, their child and related kinds,
and CRDs. kopf watches none of them.

kopf hands every listed object and every event to a worker task of its own with its full processing
machinery, about 3 ms each: a restart with 1,000 Workshops listed 7,000 objects in 22 s that way. Here
each object goes straight to a callback that files it in a cache (microseconds), one page of a
paginated listing at a time, then the stream watches on from the listing's resourceVersion.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from troupe.engine.cache import sharing_later
from troupe.engine.client import ApiException, Kube, Manifest, NotFound, resource_path
from troupe.engine.health import WatchActivity

logger = logging.getLogger(__name__)

#: ``handler(type, object)``: type ``ADDED``, ``MODIFIED`` or ``DELETED`` (an object of a listing: ADDED).
Handler = Callable[[str, Manifest], None]
#: Retries after an error: 1 s doubling to 30 s. A kind whose CRD was just established but which API
#: discovery does not serve yet (a 404 for a few hundred ms) is asked again sooner and more often.
BACKOFF = (1.0, 30.0)
UNSERVED_BACKOFF = (0.2, 5.0)
PAGE = 500


class Expired(Exception):
    """The resourceVersion to watch from is too old (410 Gone): list again."""


class Informer:
    """List, then watch, one resource in one namespace (or all), for as long as it runs.

    Reconnects from the last resourceVersion seen; lists again when that is too old, and then delivers
    DELETED for the objects it delivered before that the new listing no longer has (deleted while the
    stream was away), so no cache keeps ghosts. It keeps only the keys of the objects, not their bodies.
    """

    def __init__(
        self,
        kube: Kube,
        *,
        api_version: str,
        kind: str,
        plural: str,
        namespace: str | None,
        handler: Handler,
        activity: WatchActivity | None = None,
        label_selector: str | None = None,
        server_timeout: int = 300,
        read_timeout: float = 330.0,
    ) -> None:
        self.kube = kube
        self.api_version = api_version
        self.kind = kind
        self.plural = plural
        self.namespace = namespace
        self.handler = handler
        self.activity = activity
        self.label_selector = label_selector
        self.server_timeout = server_timeout
        self.read_timeout = read_timeout
        self.stream = f"{plural}@{namespace or '*'}"
        self.version: str | None = None  # the resourceVersion to watch from; None: list first
        self.known: set[tuple[str | None, str]] = set()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"informer {self.stream}")

    async def stop(self, *, forget: bool = False) -> None:
        """Stop the stream; ``forget``: the kind is gone (its CRD deleted), so are all its objects."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()  # it waits at an await: it delivers nothing more (a start may follow at once)
        if self.activity is not None:
            self.activity.forget(self.stream)
        if forget:
            self._vanish(set(self.known))
            self.known.clear()
            self.version = None
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def run(self) -> None:
        """List and watch until cancelled; errors are retried with a warning, never raised."""
        if self.activity is not None:
            # Known from the start: /readyz waits for its listing, /healthz sees it stall if it never
            # gets one (a 403, an API server gone for good).
            self.activity.seen(self.stream)
        delay = None
        while True:
            try:
                if self.version is None:
                    await self.list()
                await self.watch()
                delay = None
            except asyncio.CancelledError:
                raise
            except Expired:
                logger.info("%s: resourceVersion %s is too old; listing again", self.stream, self.version)
                self.version = None
                delay = None
            except NotFound:
                # Not served (yet): an optional kind's CRD established before discovery serves it.
                delay = _next(delay, UNSERVED_BACKOFF)
                logger.warning("%s: not served yet; trying again in %.1fs", self.stream, delay)
                await asyncio.sleep(delay)
            except Exception as exc:  # a stream never dies: the warning says why it retries
                delay = _next(delay, BACKOFF)
                logger.warning("%s: %s; trying again in %.0fs", self.stream, _describe(exc), delay)
                await asyncio.sleep(delay)

    # -- list and watch ---------------------------------------------------------------------------

    @property
    def _initial(self) -> bool:
        """Listing before the stream has reported its first listing (what start-up waits for)."""
        return self.activity is not None and not self.activity.has_listed(self.stream)

    @property
    def path(self) -> str:
        return resource_path(self.api_version, self.plural, self.namespace)

    def _query(self) -> dict[str, str]:
        return {"labelSelector": self.label_selector} if self.label_selector else {}

    async def list(self) -> None:
        """Deliver every object, a page at a time (never all pages at once), then the vanished ones."""
        listed: set[tuple[str | None, str]] = set()
        query = {**self._query(), "limit": str(PAGE)}
        started = time.monotonic()
        first_page: float | None = None
        while True:
            try:
                page = await self.kube.request("GET", self.path, query=query)
            except ApiException as exc:
                if exc.status == 410:  # the continue token expired: start the listing over
                    raise Expired() from exc
                raise
            if first_page is None:
                first_page = time.monotonic() - started
            # The first reconcile waits for the initial listings: the strings of their bodies are
            # shared once they are all in (the runtime calls cache.share_some), not on their way.
            with sharing_later() if self._initial else nullcontext():
                for item in page.get("items") or []:
                    listed.add(self._key(item))
                    self._deliver("ADDED", item)
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                break
            query["continue"] = meta["continue"]
            del page
        vanished = self.known - listed
        self._vanish(vanished)
        self.known = listed
        logger.info(
            "%s: listed %d objects in %.2f s (first page in %.2f s)%s",
            self.stream,
            len(listed),
            time.monotonic() - started,
            first_page,
            f", {len(vanished)} gone meanwhile" if vanished else "",
        )
        self.version = str(meta.get("resourceVersion") or "") or None
        if self.activity is not None:
            self.activity.seen(self.stream, listed=True)

    async def watch(self) -> None:
        """Deliver the events from ``version`` on until the server ends the stream (its timeout)."""
        query = {
            **self._query(),
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self.server_timeout),
            "resourceVersion": self.version or "",
        }
        async for event in self.kube.watch(self.path, query, read_timeout=self.read_timeout):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise Expired()
                raise ApiException(status=obj.get("code"), reason=obj.get("reason"), body=obj.get("message"))
            self.version = (obj.get("metadata") or {}).get("resourceVersion") or self.version
            if self.activity is not None:
                self.activity.seen(self.stream)
            if kind == "BOOKMARK":
                continue
            key = self._key(obj)
            if kind == "DELETED":
                self.known.discard(key)
            else:
                self.known.add(key)
            self._deliver(str(kind), obj)

    # -- delivery ----------------------------------------------------------------------------------

    @staticmethod
    def _key(obj: Manifest) -> tuple[str | None, str]:
        meta = obj.get("metadata") or {}
        return meta.get("namespace") or None, str(meta.get("name", ""))

    def _vanish(self, keys: set[tuple[str | None, str]]) -> None:
        for namespace, name in sorted(keys, key=lambda k: (k[0] or "", k[1])):
            meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
            self._deliver("DELETED", {"apiVersion": self.api_version, "kind": self.kind, "metadata": meta})

    def _deliver(self, kind: str, obj: Manifest) -> None:
        # Items of a list answer carry no apiVersion and kind; the caches key objects by them.
        obj.setdefault("apiVersion", self.api_version)
        obj.setdefault("kind", self.kind)
        try:
            self.handler(kind, obj)
        except Exception:  # a bug in a handler must not stop the stream (nor repeat: the event is past)
            logger.exception("%s: the %s event of %s could not be handled", self.stream, kind, self._key(obj))


def _next(delay: float | None, bounds: tuple[float, float]) -> float:
    first, most = bounds
    return first if delay is None else min(delay * 2, most)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ApiException):
        return f"the API server answered {exc.status} {exc.reason}: {(exc.body or '')[:200]}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
