"""Deletes the VMDiskImages the operator created once no Workspace references them any more.

A disk image is shared: every workspace naming it uses it as it is, and the one that created it is not
its only user. The core lets a child belong to one owner, so the creator's builder only creates and keeps
it (retained: no owner reference, garbage collection never takes it); who still needs it is derived here
from all observed workspaces (the watch cache), and the disk goes with its last reference.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from troupe import OWNER_ANNOTATION, KindSpec, Manifest, OperatorHandle
from troupe_workspace.builders import CREATED_BY_LABEL, VMDI_API

logger = logging.getLogger(__name__)

#: Events come in bursts (a status write per reconcile): one sweep per burst.
DELAY = 2.0


def unused(
    disks: Iterable[Manifest],
    workspaces: Iterable[Manifest],
    references: Callable[[Manifest], Iterable[tuple[str | None, str]]],
) -> list[Manifest]:
    """Operator-made disks that no workspace references (pure: the sweeper's decision)."""
    used = {ref for body in workspaces for ref in references(body)}
    return [
        d
        for d in disks
        if str((d["metadata"].get("annotations") or {}).get(OWNER_ANNOTATION, "")).startswith(
            "Workspace.pelotech.ot/"
        )
        and (d["metadata"].get("namespace"), d["metadata"]["name"]) not in used
        and not d["metadata"].get("deletionTimestamp")
    ]


class Sweeper:
    def __init__(
        self,
        handle: OperatorHandle,
        kind: KindSpec,
        namespace: str,
        references: Callable[[Manifest], Iterable[tuple[str | None, str]]],
    ) -> None:
        self.handle, self.kind, self.namespace, self.references = handle, kind, namespace, references
        self.pending: asyncio.Task[None] | None = None

    def soon(self) -> None:
        if self.pending is None or self.pending.done():
            self.pending = asyncio.get_running_loop().create_task(self.sweep())

    async def sweep(self) -> None:
        await asyncio.sleep(DELAY)
        path = f"/apis/{VMDI_API}/namespaces/{self.namespace}/vmdiskimages"
        try:
            listing: dict[str, Any] = await self.handle.kube.request(
                "GET", path, query={"labelSelector": CREATED_BY_LABEL}
            )
        except Exception as exc:  # the VMDiskImage CRD absent (404), the API server away: next event
            logger.debug("no disk sweep: %s", exc)
            return
        for disk in unused(listing.get("items") or [], self.handle.objects(self.kind), self.references):
            meta = disk["metadata"]
            logger.info(
                "deleting VMDiskImage %s/%s: no Workspace references it", meta["namespace"], meta["name"]
            )
            await self.handle.kube.delete(
                VMDI_API, "vmdiskimages", meta["namespace"], meta["name"], uid=meta["uid"]
            )
