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
