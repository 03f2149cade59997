"""Deleting an Environment: its helm release is uninstalled before its namespace goes.

Hooks cannot run helm (they are pure), and the core cancels an object's actions when it is deleted, so
the uninstall runs from a watch handler: when an Environment has a deletion timestamp and a release the
operator installed, one task per Environment uninstalls it and records ``status.uninstalled``; the
finalize hook waits for that, then for the namespace (which the builders stop returning) to be gone.
A restarted operator sees the deleting Environment in its first listing and uninstalls again (helm
uninstall of a release already gone is a no-op).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from troupe import Manifest, OperatorHandle
from troupe_catalyst import deploy
from troupe_catalyst.config import Settings

logger = logging.getLogger(__name__)

GROUP_VERSION = "catalyst.catalyst.dev/v1alpha1"
FINALIZER = "catalyst.troupe.dev/finalizer"
#: Attempts before the namespace is deleted all the same (it holds the release's namespaced objects).
MAX_ATTEMPTS = 5


def needs_uninstall(body: Manifest) -> bool:
    """A helm deploy ran in the operator's own namespace and its release is not uninstalled yet."""
    status = body.get("status") or {}
    ran = bool((status.get("actions") or {}).get("deploy"))
    return (
        bool(status.get("namespace"))
        and status.get("deployType") == "helm"
        and ran
        and not status.get("uninstalled")
    )


def namespace_pending(body: Manifest) -> bool:
    """The operator's own namespace of this Environment is not yet known to be gone."""
    status = body.get("status") or {}
    return bool(status.get("namespace")) and not status.get("namespaceDeleted")


class Uninstaller:
    """One teardown task per deleting Environment: uninstall, then watch its namespace go."""

    def __init__(self, handle: OperatorHandle, settings: Callable[[], Settings]) -> None:
        self.handle = handle
        self.settings = settings
        self.tasks: dict[tuple[str, str], asyncio.Task[None]] = {}

    def consider(self, body: Manifest, event_type: str | None) -> None:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if event_type == "DELETED" or not meta.get("deletionTimestamp"):
            return
        if FINALIZER not in (meta.get("finalizers") or []) or not namespace_pending(body):
            return
        if key in self.tasks and not self.tasks[key].done():
            return
        self.tasks[key] = asyncio.create_task(self.tear_down(body), name=f"teardown {key[0]}/{key[1]}")

    async def tear_down(self, body: Manifest) -> None:
        try:
            await self._tear_down(body)
        except asyncio.CancelledError:
            raise
        except Exception:  # the next event of the Environment starts another task
            logger.exception(
                "Environment %s/%s: teardown step failed",
                body["metadata"].get("namespace"),
                body["metadata"]["name"],
            )

    async def _tear_down(self, body: Manifest) -> None:
        meta, status = body["metadata"], body.get("status") or {}
        where = f"Environment {meta.get('namespace')}/{meta['name']}"
        namespace = str(status["namespace"])
        if needs_uninstall(body):
            note = ""
            for attempt in range(1, MAX_ATTEMPTS + 1):
                try:
                    await deploy.uninstall(self.settings(), str(status["release"]), namespace)
                    note = ""
                    break
                except Exception as exc:  # helm away: again; the namespace goes after the last attempt
                    note = str(exc)
                    logger.warning("%s: %s (attempt %d)", where, exc, attempt)
                    await asyncio.sleep(5 * attempt)
            if note:
                logger.warning("%s: deleting namespace %s although: %s", where, namespace, note)
            await self.record(meta, {"uninstalled": True})
        # the builders stop returning the namespace now; the finalizer waits until it is really gone
        uid = None
        while True:
            current = await self.handle.kube.get("v1", "namespaces", None, namespace)
            if current is None or (uid and current["metadata"].get("uid") != uid):
                break
            uid = uid or current["metadata"].get("uid")
            await asyncio.sleep(2)
        await self.record(meta, {"namespaceDeleted": True})

    async def record(self, meta: dict[str, Any], fields: dict[str, Any]) -> None:
        try:
            await self.handle.kube.patch_status(
                GROUP_VERSION, "environments", meta.get("namespace"), meta["name"], fields
            )
        except (
            Exception
        ) as exc:  # the Environment is gone already, or the API is away: the next event retries
            logger.warning(
                "Environment %s/%s: could not record %s: %s", meta.get("namespace"), meta["name"], fields, exc
            )
