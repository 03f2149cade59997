"""Deletes the VMDiskImages the operator created once no Workspace references them any more.

A disk image is shared: every workspace naming it uses it as it is, and the one that created it is not
its only user. The core lets a child belong to one owner, so the creator's builder only creates and keeps
it (retained: no owner reference, garbage collection never takes it); who still needs it is derived here
from all observed workspaces (the watch cache), and the disk goes with its last reference.

Both come from the core's own streams (``handle.on_event``), which the sweeper follows: the disks each
Workspace references, of every Workspace (also those ``--selector`` leaves to another installation: a disk
one of them uses is used), and the operator-made disks (the core offers no read of a child kind's cache).
No sweep runs before both listings are in: before, a disk would look unused, or be missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable

from troupe import OWNER_ANNOTATION, ChildKind, KindSpec, Manifest, OperatorHandle
from troupe_workspace.builders import CREATED_BY_LABEL, VMDI_API

logger = logging.getLogger(__name__)

#: (namespace, name) of a VMDiskImage
Reference = tuple[str | None, str]

#: Events come in bursts (a status write per reconcile): one sweep per burst.
DELAY = 2.0


def unused(disks: Iterable[Manifest], used: Collection[Reference]) -> list[Manifest]:
    """Operator-made disks that no workspace references (pure: the sweeper's decision)."""
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
        disk_kind: ChildKind,
        namespace: str,
        references: Callable[[Manifest], Iterable[Reference]],
    ) -> None:
        self.handle, self.namespace, self.references = handle, namespace, references
        self.pending: asyncio.Task[None] | None = None
        #: The disks each Workspace references, by its name, as the stream last told.
        self.uses: dict[str, frozenset[Reference]] = {}
        #: The operator-made disks of the disk namespace, by name: their metadata, as the stream last told.
        self.disks: dict[str, Manifest] = {}
        self._listed: set[str] = set()
        handle.on_event(kind, self._on_workspace)
        handle.on_event(disk_kind, self._on_disk)
        handle.on_listed(kind, lambda: self._on_listed("workspaces"))
        handle.on_listed(disk_kind, lambda: self._on_listed("disks"))

    def _on_workspace(self, event: str, body: Manifest) -> None:
        name = str((body.get("metadata") or {}).get("name"))
        before = self.uses.pop(name, frozenset())
        if event != "DELETED":
            self.uses[name] = frozenset(self.references(body))
        # A workspace gone, or its VMs edited: some operator-made disk may have lost its last user.
        if before - self.uses.get(name, frozenset()):
            self.soon()

    def _on_disk(self, event: str, body: Manifest) -> None:
        meta = body.get("metadata") or {}
        if meta.get("namespace") != self.namespace or CREATED_BY_LABEL not in (meta.get("labels") or {}):
            return
        if event == "DELETED":
            self.disks.pop(meta["name"], None)
            return
        known = meta["name"] in self.disks
        self.disks[meta["name"]] = {"metadata": meta}
        if not known:  # made after its workspace's last sweep (the workspace may be gone already)
            self.soon()

    def _on_listed(self, what: str) -> None:
        self._listed.add(what)
        self.soon()

    def soon(self) -> None:
        if len(self._listed) < 2:  # not before both listings are in (a disk's comes again after its CRD)
            return
        if self.pending is None or self.pending.done():
            self.pending = asyncio.get_running_loop().create_task(self.sweep())

    async def sweep(self) -> None:
        await asyncio.sleep(DELAY)
        used = {ref for refs in self.uses.values() for ref in refs}
        for disk in unused(list(self.disks.values()), used):
            meta = disk["metadata"]
            logger.info(
                "deleting VMDiskImage %s/%s: no Workspace references it", meta["namespace"], meta["name"]
            )
            try:
                await self.handle.kube.delete(
                    VMDI_API, "vmdiskimages", meta["namespace"], meta["name"], uid=meta["uid"]
                )
            except Exception as exc:  # the API server away, the CRD just gone: the next event sweeps again
                logger.warning("could not delete VMDiskImage %s/%s: %s", meta["namespace"], meta["name"], exc)
