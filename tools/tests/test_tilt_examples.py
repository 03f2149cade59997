"""The rule tools/tilt/examples.py applies an operator's examples by (the parts that need no cluster)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tilt"))  # tools/ is scripts, not a package

import examples

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = {("", "Namespace"), ("pelotech.ot", "Workspace")}


def test_a_namespaced_object_lands_in_the_run_namespace_labelled_without_status() -> None:
    docs = yaml.safe_load_all(
        "apiVersion: catalyst.catalyst.dev/v1alpha1\nkind: Environment\n"
        "metadata: {name: pr-1, namespace: my-team, labels: {a: b}}\nspec: {x: 1}\nstatus: {phase: Ready}\n"
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: git}\n"
    )
    env, secret = examples.prepare(docs, "tilt-ns", CLUSTER)
    assert env["metadata"] == {
        "name": "pr-1",
        "namespace": "tilt-ns",
        "labels": {"a": "b", examples.LABEL: "tilt-ns"},
    }
    assert "status" not in env and env["spec"] == {"x": 1}
    assert secret["metadata"]["namespace"] == "tilt-ns"


def test_a_cluster_scoped_object_keeps_its_name_and_gets_no_namespace() -> None:
    docs = [
        {
            "apiVersion": "pelotech.ot/v1alpha1",
            "kind": "Workspace",
            "metadata": {"name": "web", "namespace": "x"},
        }
    ]
    (ws,) = examples.prepare(docs, "tilt-ns", CLUSTER)
    assert ws["metadata"] == {"name": "web", "labels": {examples.LABEL: "tilt-ns"}}


def test_empty_documents_are_dropped() -> None:
    assert examples.prepare([None, {}], "n", CLUSTER) == []


def test_a_skip_marker_gives_its_reason_and_only_the_seed_environment_has_one() -> None:
    assert examples.skip_reason("# a comment\n# tilt: skip: refused: label\nkind: X\n") == "refused: label"
    assert examples.skip_reason("kind: X\n# tilt: skipped\n") is None
    marked = [
        p.relative_to(ROOT).as_posix()
        for p in ROOT.glob("plugins/*/examples/*.yaml")
        if examples.skip_reason(p.read_text())
    ]
    assert marked == ["plugins/catalyst/examples/environment.yaml"]


def test_resource_names_a_core_kind_by_kind_and_a_custom_one_with_its_group() -> None:
    assert examples.resource({"apiVersion": "v1", "kind": "Secret"}) == "Secret"
    assert (
        examples.resource({"apiVersion": "pelotech.ot/v1alpha1", "kind": "Workspace"})
        == "Workspace.v1alpha1.pelotech.ot"
    )
