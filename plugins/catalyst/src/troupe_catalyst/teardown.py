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


class Uninstaller:
    def __init__(self, handle: OperatorHandle, settings: Callable[[], Settings]) -> None:
        self.handle = handle
        self.settings = settings
        self.tasks: dict[tuple[str, str], asyncio.Task[None]] = {}

    def consider(self, body: Manifest, event_type: str | None) -> None:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if event_type == "DELETED" or not meta.get("deletionTimestamp"):
            return
        if FINALIZER not in (meta.get("finalizers") or []) or not needs_uninstall(body):
            return
        if key in self.tasks and not self.tasks[key].done():
            return
        self.tasks[key] = asyncio.create_task(self.uninstall(body), name=f"uninstall {key[0]}/{key[1]}")

    async def uninstall(self, body: Manifest) -> None:
        meta, status = body["metadata"], body.get("status") or {}
        release, namespace = str(status["release"]), str(status["namespace"])
        note = ""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                await deploy.uninstall(self.settings(), release, namespace)
                break
            except Exception as exc:  # helm away: try again; the namespace goes after the last attempt
                note = str(exc)
                logger.warning(
                    "Environment %s/%s: %s (attempt %d)", meta.get("namespace"), meta["name"], exc, attempt
                )
                await asyncio.sleep(5 * attempt)
        try:
            await self.handle.kube.patch_status(
                GROUP_VERSION, "environments", meta.get("namespace"), meta["name"], {"uninstalled": True}
            )
        except Exception as exc:
            logger.warning(
                "Environment %s/%s: could not record the uninstall: %s",
                meta.get("namespace"),
                meta["name"],
                exc,
            )
        if note:
            logger.warning(
                "Environment %s/%s: deleting namespace %s although: %s",
                meta.get("namespace"),
                meta["name"],
                namespace,
                note,
            )
