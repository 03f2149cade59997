"""Every operator chart: lint-clean, accepted by the API server, and running under restricted Pod Security;
built on the troupe-common library chart, its RBAC the rules generated into files/rbac.yaml, and
installable from a packaged .tgz alone.

The operator-specific behaviour of each chart (its RBAC is enough, and no more) is proven by the
operator's own e2e tests, which run the operator as the chart's ServiceAccount.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import (
    HELM,
    ROOT,
    Helm,
    build_chart_dependencies,
    create_namespace,
    delete_namespace,
    get,
    kubectl,
    kubectl_json,
    new_namespace_name,
    refusals,
    start_operator,
    wait_for,
)

pytestmark = pytest.mark.e2e

CHARTS = sorted(p for p in (ROOT / "charts").glob("*-operator") if (p / "Chart.yaml").is_file())


def helm(*args: str, kubeconfig: str | None = None) -> str:
    cmd = [HELM, *args, *(["--kubeconfig", kubeconfig] if kubeconfig else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"helm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def render(chart: Path, namespace: str, *sets: str) -> list[dict[str, Any]]:
    out = helm(
        "template", "t", str(chart), "--namespace", namespace, *[a for s in sets for a in ("--set", s)]
    )
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module", autouse=True)
def dependencies() -> None:
    """The charts' troupe-common dependency, vendored as a fresh clone would need it."""
    for chart in CHARTS:
        build_chart_dependencies(chart)


@pytest.fixture(params=CHARTS, ids=[c.name for c in CHARTS])
def chart(request: pytest.FixtureRequest) -> Path:
    return Path(request.param)


def all_namespaces_only(chart: Path) -> bool:
    """A chart whose schema refuses watchNamespaces: its cluster-scoped kind has namespaced children, so
    the operator watches all namespaces (it refuses --namespace at start-up)."""
    schema = json.loads((chart / "values.schema.json").read_text())
    return bool(schema["properties"]["watchNamespaces"].get("maxItems") == 0)


def watch_sets(chart: Path, namespace: str) -> list[tuple[str, ...]]:
    """The value sets a chart renders with: all namespaces, and one watched namespace where it may."""
    return [()] if all_namespaces_only(chart) else [(), ("watchNamespaces={" + namespace + "}",)]


def generated_rules(chart: Path) -> dict[str, list[dict[str, Any]]]:
    rules: dict[str, list[dict[str, Any]]] = yaml.safe_load((chart / "files" / "rbac.yaml").read_text())
    return rules


@pytest.fixture
def chart_crds(chart: Path, cluster: str) -> Iterator[None]:
    crds = sorted((chart / "crds").glob("*.yaml"))
    for path in crds:
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    for path in crds:
        for doc in yaml.safe_load_all(path.read_text()):
            wait_for(
                lambda name=doc["metadata"]["name"]: get("crd", name),
                lambda c: any(
                    x["type"] == "Established" and x["status"] == "True" for x in c["status"]["conditions"]
                ),
                timeout=30,
                describe=f"CRD {doc['metadata']['name']} Established",
            )
    yield


def test_chart_lints_clean(chart: Path) -> None:
    out = helm("lint", "--strict", str(chart))
    assert "0 chart(s) failed" in out
    # the schema refuses what the templates cannot use
    bad = subprocess.run(
        [HELM, "template", "t", str(chart), "--set", "replicaCount=-1"], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "replicaCount" in bad.stderr


def test_library_chart_lints_clean_and_renders_nothing_alone() -> None:
    library = ROOT / "charts" / "troupe-common"
    assert yaml.safe_load((library / "Chart.yaml").read_text())["type"] == "library"
    assert "0 chart(s) failed" in helm("lint", "--strict", str(library))
    alone = subprocess.run([HELM, "template", "t", str(library)], capture_output=True, text=True)
    assert alone.returncode != 0 and "library charts are not installable" in alone.stderr


def test_every_name_fits_a_label_and_carries_the_standard_labels(chart: Path) -> None:
    long_release = "r" * 53  # the longest release name helm accepts
    out = helm("template", long_release, str(chart), "--namespace", "ns")
    for doc in (d for d in yaml.safe_load_all(out) if d):
        meta = doc["metadata"]
        assert len(meta["name"]) <= 63, meta["name"]
        labels = meta["labels"]
        assert labels["app.kubernetes.io/instance"] == long_release
        assert labels["app.kubernetes.io/part-of"] == "troupe"
        assert labels["helm.sh/chart"].startswith(chart.name)


def test_deployment_is_restricted_and_probed(chart: Path) -> None:
    (deploy,) = [d for d in render(chart, "ns") if d["kind"] == "Deployment"]
    pod = deploy["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "--all-namespaces" in container["args"] and "--standalone" not in container["args"]


def test_watch_namespaces_grant_roles_there_and_nothing_cluster_wide(chart: Path) -> None:
    if all_namespaces_only(chart):
        refused = subprocess.run(
            [HELM, "template", "t", str(chart), "--set", "watchNamespaces={a}"],
            capture_output=True,
            text=True,
        )
        assert refused.returncode != 0 and "watchNamespaces" in refused.stderr
        return
    docs = render(chart, "ops", "watchNamespaces={team-a,team-b}")
    kinds = {(d["kind"], d["metadata"].get("namespace")) for d in docs}
    assert ("Role", "team-a") in kinds and ("RoleBinding", "team-b") in kinds
    assert "ClusterKopfPeering" not in {k for k, _ in kinds}
    if not generated_rules(chart)["cluster"]:  # no cluster-scoped resource: nothing cluster-wide at all
        assert not {k for k, _ in kinds} & {"ClusterRole", "ClusterRoleBinding"}
    (deploy,) = [d for d in docs if d["kind"] == "Deployment"]
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args


def test_rbac_is_the_generated_rules(chart: Path) -> None:
    """The roles hold exactly files/rbac.yaml's rules for the watch mode (the library reads the file)."""
    rules = generated_rules(chart)
    # (catalyst's "-deployer" ClusterRole is what helm may create in environments: values, not generated)
    (cluster_role,) = [
        d
        for d in render(chart, "ops")
        if d["kind"] == "ClusterRole" and not d["metadata"]["name"].endswith("-deployer")
    ]
    assert cluster_role["rules"] == rules["namespaced"] + rules["allNamespaces"] + rules["cluster"]
    if all_namespaces_only(chart):
        return
    roles = [d for d in render(chart, "ops", "watchNamespaces={team-a,team-b}") if d["kind"] == "Role"]
    assert [r["metadata"]["namespace"] for r in roles] == ["team-a", "team-b"]
    for role in roles:
        assert role["rules"] == rules["namespaced"] + rules["watchNamespaces"]
    # rbac.create=false: none of it
    off = render(chart, "ops", "rbac.create=false")
    assert not {d["kind"] for d in off} & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


def test_cluster_scoped_rules_are_granted_cluster_wide_in_either_mode(chart: Path, tmp_path: Path) -> None:
    """A cluster-scoped kind or child (rules under ``cluster``) needs a ClusterRole even with
    watchNamespaces; the namespaced rules stay in the Roles."""
    if all_namespaces_only(chart):
        pytest.skip("the chart refuses watchNamespaces")
    copy = tmp_path / chart.name
    shutil.copytree(chart, copy)
    rules = generated_rules(chart)
    namespaces_rule = {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "create"]}
    rules["cluster"] = [namespaces_rule]
    (copy / "files" / "rbac.yaml").write_text(yaml.safe_dump(rules))
    docs = render(copy, "ops", "watchNamespaces={team-a}")
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert cluster_role["rules"] == [namespaces_rule]
    (binding,) = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    assert binding["subjects"][0]["namespace"] == "ops"
    (role,) = [d for d in docs if d["kind"] == "Role"]
    assert namespaces_rule not in role["rules"]
    (all_namespaces,) = [d for d in render(copy, "ops") if d["kind"] == "ClusterRole"]
    assert all_namespaces["rules"][-1] == namespaces_rule


def test_rbac_refuses_a_chart_without_generated_rules(chart: Path, tmp_path: Path) -> None:
    copy = tmp_path / chart.name
    shutil.copytree(chart, copy)
    (copy / "files" / "rbac.yaml").unlink()
    proc = subprocess.run([HELM, "template", "t", str(copy)], capture_output=True, text=True)
    assert proc.returncode != 0 and "files/rbac.yaml" in proc.stderr and "make crds" in proc.stderr


def test_service_monitor_only_when_asked(chart: Path) -> None:
    assert not [d for d in render(chart, "ns") if d["kind"] == "ServiceMonitor"]
    (sm,) = [
        d for d in render(chart, "ns", "metrics.serviceMonitor.enabled=true") if d["kind"] == "ServiceMonitor"
    ]
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"


def test_templates_pass_a_server_side_dry_run(chart: Path, chart_crds: None, namespace: str) -> None:
    for sets in watch_sets(chart, namespace):
        out = helm(
            "template", "dry", str(chart), "--namespace", namespace, *[a for s in sets for a in ("--set", s)]
        )
        result = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=out)
        assert "(server dry run)" in result.stdout


def comparable(rendered: str) -> list[dict[str, Any]]:
    """Rendered documents without the random values a render draws (the workshop's password key)."""
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    for doc in docs:
        if doc["kind"] == "Secret":
            doc.pop("data", None)
    return docs


def test_packaged_chart_stands_alone(chart: Path, chart_crds: None, namespace: str, tmp_path: Path) -> None:
    """``helm package`` bundles troupe-common: the .tgz, away from the repository, renders what the
    directory renders, and the API server accepts it (server-side dry run)."""
    out = tmp_path / "dist"
    helm("package", str(chart), "--destination", str(out))
    (tgz,) = out.glob(f"{chart.name}-*.tgz")
    with tarfile.open(tgz) as tar:
        names = tar.getnames()
    assert f"{chart.name}/charts/troupe-common/templates/_deployment.tpl" in names, names
    assert f"{chart.name}/files/rbac.yaml" in names
    alone = tmp_path / "elsewhere"
    alone.mkdir()
    shutil.move(tgz, alone)
    args = (
        "template",
        "t",
        "--namespace",
        namespace,
        *[a for s in watch_sets(chart, namespace)[-1] for a in ("--set", s)],
    )
    packaged = subprocess.run(
        [HELM, *args, str(alone / tgz.name)], cwd=alone, capture_output=True, text=True, check=True
    ).stdout
    assert comparable(packaged) == comparable(helm(*args, str(chart)))
    result = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=packaged)
    assert "(server dry run)" in result.stdout


async def test_installs_and_runs_under_restricted_pod_security(
    chart: Path, chart_crds: None, namespace: str, cluster: str
) -> None:
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    client = Helm(cluster)
    try:
        # --wait: the Deployment must become Available, so its pod passed the restricted profile.
        await client.ainstall(chart, namespace, release="op", values={"metrics": {"port": 9000}})
        pods = kubectl_json("get", "pods", "-n", namespace, "-l", "app.kubernetes.io/instance=op")["items"]
        assert pods and all(p["status"]["phase"] == "Running" for p in pods)
        svc = get("service", f"op-{chart.name}-metrics", namespace)
        assert svc is not None and svc["spec"]["ports"][0]["port"] == 9000
    finally:
        await client.auninstall_all()


def test_rejected_values_say_which_key(chart: Path) -> None:
    proc = subprocess.run(
        [HELM, "template", "t", str(chart), "--set", "logLevel=loud"], capture_output=True, text=True
    )
    assert proc.returncode != 0 and "logLevel" in proc.stderr


def test_operator_runs_on_the_roles_of_watch_namespaces_alone(
    chart: Path, chart_crds: None, namespace: str, cluster: str, tmp_path: Path
) -> None:
    """With watchNamespaces the operator lives on namespaced Roles: it must start and list without a 403."""
    if all_namespaces_only(chart):
        pytest.skip("the chart refuses watchNamespaces")
    client = Helm(cluster)
    system = create_namespace(new_namespace_name("ops"))
    try:
        client.install(chart, system, release="ro", values={"watchNamespaces": [namespace]})
        op = start_operator(
            chart.name.removesuffix("-operator"), namespace, f"ro-{chart.name}", tmp_path, sa_namespace=system
        )
        try:
            wait_for(
                lambda: urllib.request.urlopen(
                    f"http://127.0.0.1:{op.metrics_port}/readyz", timeout=2
                ).status,
                lambda status: status == 200,
                timeout=60,
                describe="the operator ready (every initial listing done)",
            )
            assert op.alive
            assert not refusals(op.log()), op.tail()
        finally:
            op.stop()
    finally:
        client.uninstall_all()
        delete_namespace(system)
