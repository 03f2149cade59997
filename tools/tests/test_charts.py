"""The RBAC generator (tools/charts.py) and the staleness check of generated chart files (tools/crds.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from troupe import SpecModel
from troupe.kinds import ChildKind, KindSpec, RelatedKind

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tools/ is scripts, not a package

import crds

import charts


class Spec(SpecModel):
    size: int = 1


def kind(**kw: object) -> KindSpec:
    base: dict[str, object] = {
        "operator": "demo",
        "group": "demo.io",
        "version": "v1",
        "kind": "Demo",
        "plural": "demos",
        "spec_model": Spec,
    }
    return KindSpec(**{**base, **kw})  # type: ignore[arg-type]


def rules(grants: list[charts.Grant]) -> dict[tuple[str, str, str], tuple[str, ...]]:
    return {(g.section, g.group, g.resource): g.verbs for g in grants}


def test_a_kind_without_children_is_watched_its_status_patched_and_events_posted() -> None:
    assert rules(list(charts.kind_grants(kind()))) == {
        ("namespaced", "demo.io", "demos"): ("get", "list", "watch", "delete"),
        ("namespaced", "demo.io", "demos/status"): ("patch",),
        ("namespaced", "", "events"): ("create",),
    }


def test_finalize_adds_patch_on_the_kind() -> None:
    got = rules(list(charts.kind_grants(kind(finalize=True))))
    assert got["namespaced", "demo.io", "demos"] == ("get", "list", "watch", "patch", "delete")


def test_children_by_prune_and_observe_only() -> None:
    children = (
        ChildKind("apps/v1", "Deployment", "deployments"),
        ChildKind("v1", "PersistentVolumeClaim", "persistentvolumeclaims", prune=False),
        ChildKind("v1", "Pod", "pods", prune=False, observe_only=True),
        ChildKind("v1", "Namespace", "namespaces", namespaced=False),
    )
    got = rules(list(charts.kind_grants(kind(children=children))))
    assert got["namespaced", "apps", "deployments"] == ("get", "list", "watch", "create", "patch", "delete")
    assert got["namespaced", "", "persistentvolumeclaims"] == ("get", "list", "watch", "create", "patch")
    assert got["namespaced", "", "pods"] == ("get", "list", "watch")
    assert got["cluster", "", "namespaces"] == ("get", "list", "watch", "create", "patch", "delete")
    # children carry owner references with blockOwnerDeletion
    assert got["namespaced", "demo.io", "demos/finalizers"] == ("update",)


def test_related_kinds_are_read_and_optional_apis_need_the_crd_watch() -> None:
    related = RelatedKind("demo.io/v1", "Flavor", "flavors", references=lambda body: [], namespaced=False)
    optional = ChildKind("kubevirt.io/v1", "VirtualMachine", "virtualmachines", optional=True)
    got = rules(list(charts.kind_grants(kind(related=(related,), children=(optional,)))))
    assert got["cluster", "demo.io", "flavors"] == ("get", "list", "watch")
    assert got["cluster", "apiextensions.k8s.io", "customresourcedefinitions"] == ("get", "list", "watch")
    plain = rules(list(charts.kind_grants(kind())))
    assert ("cluster", "apiextensions.k8s.io", "customresourcedefinitions") not in plain


def test_a_cluster_scoped_kind_is_granted_cluster_wide() -> None:
    got = rules(list(charts.kind_grants(kind(scope="Cluster"))))
    assert {section for section, _, _ in got} == {"cluster"}


def test_a_kind_the_core_does_not_reconcile_is_only_read() -> None:
    assert rules(list(charts.kind_grants(kind(reconcile=False)))) == {
        ("namespaced", "demo.io", "demos"): ("get", "list", "watch"),
    }


def test_operator_grants_take_only_the_operators_kinds_merge_and_add_kopf() -> None:
    pods = ChildKind("v1", "Pod", "pods")
    watched_pods = ChildKind("v1", "Pod", "pods", prune=False, observe_only=True)
    kinds = [
        kind(children=(watched_pods,)),
        kind(kind="Other", plural="others", children=(pods,)),
        kind(operator="elsewhere", kind="Foreign", plural="foreigns"),
    ]
    grants = charts.operator_grants(kinds, "demo")
    got = rules(grants)
    assert not [r for r in got if r[2] == "foreigns"]
    # one rule per resource: the union of verbs in the fixed order, both reasons kept
    (pod_grant,) = [g for g in grants if g.resource == "pods"]
    assert pod_grant.verbs == ("get", "list", "watch", "create", "patch", "delete")
    assert "watched only" in pod_grant.why and "deleted when no longer built" in pod_grant.why
    assert got["watchNamespaces", "kopf.dev", "kopfpeerings"] == ("get", "list", "watch", "patch")
    assert got["allNamespaces", "kopf.dev", "clusterkopfpeerings"] == ("get", "list", "watch", "patch")
    assert got["allNamespaces", "", "namespaces"] == ("list", "watch")
    assert [g.section for g in grants] == sorted((g.section for g in grants), key=charts.SECTIONS.index)


def test_rendered_rbac_is_yaml_of_rbac_rules_in_every_section() -> None:
    grants = charts.operator_grants([kind(children=(ChildKind("v1", "Secret", "secrets"),))], "demo")
    text = charts.render_rbac("demo", grants)
    assert text.startswith("# Generated by `make crds`")
    doc = yaml.safe_load(text)
    assert list(doc) == list(charts.SECTIONS)
    assert doc["cluster"] == []
    assert {
        "apiGroups": [""],
        "resources": ["secrets"],
        "verbs": list(rules(grants)["namespaced", "", "secrets"]),
    } in doc["namespaced"]
    assert sum(len(v) for v in doc.values()) == len(grants)


def test_readme_table_replaces_only_the_marked_block() -> None:
    grants = charts.operator_grants([kind()], "demo")
    readme = f"# demo\n\nintro\n\n{charts.README_BEGIN}\nold table\n{charts.README_END}\n\n## Values\n"
    new = charts.with_rbac_table(readme, grants)
    assert new.startswith("# demo\n\nintro\n\n") and new.endswith(f"{charts.README_END}\n\n## Values\n")
    assert "old table" not in new
    assert "| demos (demo.io) | get, list, watch, delete | always |" in new
    assert "| kopfpeerings (kopf.dev) | get, list, watch, patch | with `watchNamespaces` only |" in new
    assert charts.with_rbac_table(new, grants) == new
    with pytest.raises(ValueError, match="rbac"):
        charts.with_rbac_table("# no block\n", grants)


def test_the_staleness_check_reports_each_stale_file_and_write_makes_it_current(tmp_path: Path) -> None:
    current = tmp_path / "current.yaml"
    current.write_text("a: 1\n")
    edited = tmp_path / "files" / "rbac.yaml"
    edited.parent.mkdir()
    edited.write_text("namespaced: []\n")
    missing = tmp_path / "crds" / "new.yaml"
    files = {current: "a: 1\n", edited: "namespaced: [x]\n", missing: "b: 2\n"}
    diffs = crds.stale(files, root=tmp_path)
    assert len(diffs) == 2
    assert "files/rbac.yaml (committed)" in diffs[0] and "+namespaced: [x]" in diffs[0]
    assert "crds/new.yaml (committed)" in diffs[1]
    assert crds.write(files, root=tmp_path) == [Path("files/rbac.yaml"), Path("crds/new.yaml")]
    assert crds.stale(files, root=tmp_path) == []


def test_the_committed_chart_files_are_current() -> None:
    """What `make check-crds` checks, so that a unit run catches a KindSpec edit without `make crds`."""
    diffs = crds.stale(crds.expected_files())
    assert not diffs, "".join(diffs) + "\nrun `make crds` and commit the result"
