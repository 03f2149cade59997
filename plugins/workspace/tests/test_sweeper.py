"""The sweeper's decision: an operator-made disk goes only when no workspace references it."""

from __future__ import annotations

import asyncio
from typing import Any

from troupe import OWNER_ANNOTATION
from troupe_workspace.builders import CREATED_BY_LABEL
from troupe_workspace.config import Settings
from troupe_workspace.sweeper import unused


def disk(name: str, owner: str | None = "Workspace.pelotech.ot//a") -> dict[str, Any]:
    annotations = {OWNER_ANNOTATION: owner} if owner else {}
    return {"metadata": {"name": name, "namespace": "default", "annotations": annotations, "uid": name}}


def workspace(*disks: str, name: str = "w", labels: dict[str, str] | None = None) -> dict[str, Any]:
    vms = [{"name": f"vm{i}", "spec": {"VMDiskImageName": d}} for i, d in enumerate(disks)]
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"virtualMachines": vms}}


def test_a_shared_disk_stays_while_any_workspace_references_it() -> None:
    disks = [disk("shared"), disk("lonely"), disk("someone-elses", owner=None)]
    gone = unused(disks, {("default", "shared")})
    assert [d["metadata"]["name"] for d in gone] == ["lonely"]  # never one the operator did not make
    assert [d["metadata"]["name"] for d in unused(disks, set())] == ["shared", "lonely"]


def disk_event(name: str, namespace: str = "disks", made: bool = True) -> dict[str, Any]:
    """A VMDiskImage as the core's stream delivers it: one the operator made carries its label."""
    body = disk(name)
    body["metadata"]["namespace"] = namespace
    body["metadata"]["labels"] = {CREATED_BY_LABEL: "a"} if made else {}
    return body


class Deletes:
    def __init__(self) -> None:
        self.deleted: list[tuple[str, str]] = []

    async def delete(self, api_version: str, plural: str, namespace: str, name: str, **_: Any) -> bool:
        self.deleted.append((namespace, name))
        return True


async def test_the_sweeper_follows_the_cores_streams_and_sweeps_once_both_listings_are_in(
    monkeypatch: Any,
) -> None:
    import kopf
    from prometheus_client import CollectorRegistry

    from troupe import OperatorHandle, OperatorMetrics
    from troupe_workspace import plugin, sweeper

    monkeypatch.setattr(sweeper, "DELAY", 0.0)
    monkeypatch.setattr(plugin, "_settings", Settings(policy_namespace="ops", disk_namespace="disks"))
    told: dict[str, Any] = {}
    kube = Deletes()
    handle = OperatorHandle(
        kopf=kopf.OperatorRegistry(),
        kube=kube,  # type: ignore[arg-type]
        operators=("workspace",),
        kinds=(plugin.WORKSPACE,),
        _enqueue=lambda *_: None,
        _objects=lambda kind: [],
        _metrics={"workspace": OperatorMetrics("workspace", CollectorRegistry())},
        _on_event=lambda kind, callback: told.setdefault(f"{kind.kind} event", callback),
        _on_listed=lambda kind, callback: told.setdefault(f"{kind.kind} listed", callback),
    )
    plugin.troupe_register_handlers(handle)
    assert set(told) == {"Workspace event", "Workspace listed", "VMDiskImage event", "VMDiskImage listed"}
    assert not handle.kopf._watching.get_all_handlers() and not handle.kopf._activities.get_all_handlers()

    async def sweeps() -> list[tuple[str, str]]:
        await asyncio.sleep(0.01)
        return kube.deleted

    # the initial listings: every Workspace (one another installation's --selector takes), every disk
    told["Workspace event"]("ADDED", workspace("shared", name="a"))
    told["Workspace event"]("ADDED", workspace("theirs", name="b", labels={"install": "other"}))
    for body in (
        disk_event("shared"),
        disk_event("theirs"),
        disk_event("lonely"),
        disk_event("gone"),
        disk_event("elsewhere", namespace="other"),
        disk_event("a-users", made=False),
    ):
        told["VMDiskImage event"]("ADDED", body)
    told["VMDiskImage event"]("DELETED", disk_event("gone"))
    told["Workspace listed"]()
    assert await sweeps() == []  # the disks' listing is not in: nothing is known unused yet

    told["VMDiskImage listed"]()
    # never a disk in use (by any installation's Workspace), a user's, another namespace's, or one gone
    assert await sweeps() == [("disks", "lonely")]
    told["VMDiskImage event"]("DELETED", disk_event("lonely"))

    told["Workspace event"]("ADDED", workspace("shared", name="c"))  # a new workspace frees no disk
    told["Workspace event"]("MODIFIED", workspace("shared", name="a"))  # nor a status write
    told["Workspace event"]("DELETED", workspace("shared", name="a"))  # "c" still uses it
    assert await sweeps() == [("disks", "lonely")]
    told["Workspace event"]("MODIFIED", workspace(name="c"))  # its VM dropped: the last user is gone
    assert await sweeps() == [("disks", "lonely"), ("disks", "shared")]
    told["VMDiskImage event"]("DELETED", disk_event("shared"))
    told["Workspace event"]("DELETED", workspace("theirs", name="b"))
    assert await sweeps() == [("disks", "lonely"), ("disks", "shared"), ("disks", "theirs")]
