"""The sweeper's decision: an operator-made disk goes only when no workspace references it."""

from __future__ import annotations

from typing import Any

from troupe import OWNER_ANNOTATION
from troupe_workspace.plugin import disk_references
from troupe_workspace.sweeper import unused


def disk(name: str, owner: str | None = "Workspace.pelotech.ot//a") -> dict[str, Any]:
    annotations = {OWNER_ANNOTATION: owner} if owner else {}
    return {"metadata": {"name": name, "namespace": "default", "annotations": annotations, "uid": name}}


def workspace(*disks: str) -> dict[str, Any]:
    vms = [{"name": f"vm{i}", "spec": {"VMDiskImageName": d}} for i, d in enumerate(disks)]
    return {"metadata": {"name": "w"}, "spec": {"virtualMachines": vms}}


def test_a_shared_disk_stays_while_any_workspace_references_it() -> None:
    disks = [disk("shared"), disk("lonely"), disk("someone-elses", owner=None)]
    gone = unused(disks, [workspace("shared")], disk_references)
    assert [d["metadata"]["name"] for d in gone] == ["lonely"]  # never one the operator did not make
    assert [d["metadata"]["name"] for d in unused(disks, [], disk_references)] == ["shared", "lonely"]


async def test_the_sweeper_follows_the_cores_stream_and_starts_once_the_listing_is_in(
    monkeypatch: Any,
) -> None:
    import kopf
    from prometheus_client import CollectorRegistry

    from troupe import OperatorHandle, OperatorMetrics
    from troupe_workspace import plugin
    from troupe_workspace.sweeper import Sweeper

    told: dict[str, Any] = {}
    handle = OperatorHandle(
        kopf=kopf.OperatorRegistry(),
        kube=None,  # type: ignore[arg-type]
        operators=("workspace",),
        kinds=(plugin.WORKSPACE,),
        _enqueue=lambda *_: None,
        _objects=lambda kind: [],
        _metrics={"workspace": OperatorMetrics("workspace", CollectorRegistry())},
        _on_event=lambda kind, callback: told.setdefault(f"{kind.kind} event", callback),
        _on_listed=lambda kind, callback: told.setdefault(f"{kind.kind} listed", callback),
    )
    sweeps: list[str] = []
    monkeypatch.setattr(Sweeper, "soon", lambda self: sweeps.append("soon"))
    plugin.troupe_register_handlers(handle)
    assert set(told) == {"Workspace event", "Workspace listed"}
    assert not handle.kopf._watching.get_all_handlers() and not handle.kopf._activities.get_all_handlers()
    told["Workspace event"]("ADDED", {})  # a new workspace frees no disk
    assert sweeps == []
    told["Workspace event"]("MODIFIED", {})
    told["Workspace event"]("DELETED", {})
    told["Workspace listed"]()
    assert sweeps == ["soon", "soon", "soon"]
