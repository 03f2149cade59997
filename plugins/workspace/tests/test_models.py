"""The Workspace schema: the seed applies, bad input is refused naming the field; CEL rules in the CRD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from troupe.crd import build_crd
from troupe_workspace.models import WorkspaceSpec
from troupe_workspace.plugin import WORKSPACE, disk_references

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_parses(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert doc["apiVersion"] == "pelotech.ot/v1alpha1" and doc["kind"] == "Workspace"
    WorkspaceSpec.model_validate(doc["spec"])


def test_the_seed_with_its_empty_network_block_parses() -> None:
    doc = yaml.safe_load((EXAMPLES / "workspace.yaml").read_text())
    doc["spec"]["network"] = None  # the seed as printed: a block holding only comments
    assert WorkspaceSpec.model_validate(doc["spec"]).network is None


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"containers": [{"name": "Api", "image": "x"}]}, "containers.0.name"),
        ({"containers": [{"name": "a", "image": ""}]}, "containers.0.image"),
        (
            {"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 0}]}]},
            "containers.0.ports.0.containerPort",
        ),
        (
            {"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 70000}]}]},
            "containers.0.ports.0.containerPort",
        ),
        (
            {
                "containers": [
                    {"name": "a", "image": "x", "ports": [{"containerPort": 80, "protocol": "HTTP"}]}
                ]
            },
            "containers.0.ports.0.protocol",
        ),
        ({"virtualMachines": [{"name": "v", "spec": {}}]}, "virtualMachines.0.spec.VMDiskImageName"),
        (
            {"virtualMachines": [{"name": "v", "spec": {"VMDiskImageName": "d", "memory": "lots"}}]},
            "virtualMachines.0.spec.memory",
        ),
        (
            {
                "virtualMachines": [
                    {
                        "name": "v",
                        "spec": {
                            "VMDiskImageName": "d",
                            "vmDiskImage": {"sourceType": "ftp", "secretRef": "s", "diskSize": "1Gi"},
                        },
                    }
                ]
            },
            "virtualMachines.0.spec.vmDiskImage.sourceType",
        ),
        ({"namespace": "Not_A_Namespace"}, "namespace"),
    ],
)
def test_bad_values_name_their_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        WorkspaceSpec.model_validate(spec)
    assert field in {".".join(str(p) for p in e["loc"]) for e in err.value.errors()}


def test_crd_is_cluster_scoped_with_the_printer_columns_and_cel_rules() -> None:
    crd = build_crd(WORKSPACE)
    assert crd["spec"]["scope"] == "Cluster" and crd["spec"]["group"] == "pelotech.ot"
    (version,) = crd["spec"]["versions"]
    columns = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["Phase", "VMs", "Containers", "Age"]  # what `kubectl get workspaces` shows
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    messages = [r["message"] for r in spec["x-kubernetes-validations"]]
    assert "virtualMachines: names must be unique" in messages
    assert "containers: a container may not share its name with a virtual machine" in messages
    assert "namespace is immutable" in messages
    vm = spec["properties"]["virtualMachines"]["items"]["properties"]["spec"]
    assert "VMDiskImageName" in vm["required"]


def test_disk_references_are_total() -> None:
    assert disk_references({}) == []
    assert disk_references(
        {"spec": {"virtualMachines": [None, {"spec": None}, {"spec": {"VMDiskImageName": "d"}}]}}
    ) == [("default", "d")]
