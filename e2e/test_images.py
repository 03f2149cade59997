"""The image smoke test: each operator's image, built here without Docker, runs its operator.

For each image (``TROUPE_E2E_IMAGES``: ``workshop,catalyst`` by default, as in ``make test``; ``all`` or a
comma list, as ``make images-test`` passes):

- it is built from ``plugins/<name>/Dockerfile`` by ``tools/images/build.sh`` (podman, chroot isolation),
  is at most 150 MB (plus the size of the programs its ``# image-tools:`` line names), carries its OCI
  labels, and holds no pip, apt or dpkg;
- each of those programs (helm, git) runs inside it as the image's user;
- ``troupe plugins`` inside it lists plugins of exactly that operator, each declaring its kinds;
- the operator, started from the image (``buildah run``) with its chart's arguments and environment and
  its chart's ServiceAccount token mounted where a pod has it, takes the chart's peering lease and brings
  an example object to its first phase, with no traceback and no 403;
- the root filesystem stays as built: the container's writable layer holds nothing but the mount points
  buildah makes (the chart mounts /tmp; the rest is read-only there).

Skipped, saying why, where podman and buildah cannot be installed (no apt-get, or no root or sudo).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import (
    KUBECTL,
    ROOT,
    Helm,
    create_namespace,
    get,
    kubectl,
    kubectl_json,
    new_namespace_name,
    refusals,
    wait_for,
)

sys.path.insert(0, str(ROOT / "tools"))  # tools/ is scripts, not a package

import chart_run

# the first test builds the image: a cold build (debootstrap of the base) takes minutes
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

MAX_MB = 150
# What a program a Dockerfile's `# image-tools:` line names may add (helm and kubectl: one static binary
# each; git: the binary, its http(s) helper and the libraries they link), how to ask its version and how
# that starts.
TOOLS = {
    "helm": (65, ["helm", "version", "--short"], "v3."),
    "kubectl": (60, ["kubectl", "version", "--client"], "Client Version: v1."),
    "git": (15, ["git", "--version"], "git version 2."),
}
ALL = sorted(p.parent.name for p in ROOT.glob("plugins/*/Dockerfile"))
_wanted = os.environ.get("TROUPE_E2E_IMAGES", "workshop,catalyst")
OPERATORS = ALL if _wanted == "all" else [o for o in _wanted.split(",") if o in ALL]
BUILT: dict[str, tuple[str, int, int]] = {}  # operator -> (image, MB, seconds)


def image_tools(operator: str) -> list[str]:
    """The programs ``plugins/<operator>/Dockerfile`` declares on its ``# image-tools:`` line."""
    dockerfile = (ROOT / "plugins" / operator / "Dockerfile").read_text()
    return [
        t for line in dockerfile.splitlines() if line.startswith("# image-tools:") for t in line.split()[2:]
    ]


def build(operator: str) -> tuple[str, int, int]:
    """Build the image once per session (a warm build is seconds: layers and uv's cache are kept)."""
    if operator not in BUILT:
        setup = subprocess.run(["bash", "tools/images/setup.sh"], cwd=ROOT, capture_output=True, text=True)
        if setup.returncode != 0 or shutil.which("buildah") is None:
            pytest.skip(f"podman and buildah could not be installed here: {setup.stderr.strip()[-500:]}")
        proc = subprocess.run(
            ["bash", "tools/images/build.sh", operator],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert proc.returncode == 0, f"image build failed:\n{proc.stderr[-4000:]}"
        _, image, mb, seconds = proc.stdout.split()
        BUILT[operator] = (image, int(mb), int(seconds))
        print(f"\n[images] {image}: {mb} MB, built in {seconds}s", file=sys.stderr)
    return BUILT[operator]


def buildah(*args: str, timeout: float = 120) -> str:
    proc = subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"buildah {' '.join(args)}: {proc.stderr}"
    return proc.stdout


@pytest.fixture
def container(request: pytest.FixtureRequest) -> Iterator[str]:
    """A working container of the operator's image (removed afterwards)."""
    image, _, _ = build(request.param)
    name = buildah("from", "--pull-never", image).strip()
    yield name
    subprocess.run(["buildah", "rm", name], capture_output=True, check=False)


def upper_dir(container: str) -> Path:
    """The container's writable overlay layer: every file written to its root filesystem lands here."""
    merged = Path(buildah("mount", container).strip())
    upper = merged.parent / "diff"
    assert upper.is_dir(), f"no overlay upper dir next to {merged} (storage driver not overlay?)"
    return upper


@pytest.mark.parametrize("container", OPERATORS, indirect=True)
def test_image_holds_that_operator_only(container: str, request: pytest.FixtureRequest) -> None:
    operator = request.node.callspec.params["container"]
    image, mb, _ = BUILT[operator]
    tools = image_tools(operator)
    limit = MAX_MB + sum(TOOLS[t][0] for t in tools)
    assert mb <= limit, f"{image} is {mb} MB (goal: at most {limit}, with {tools or 'no tools'})"
    info = json.loads(buildah("inspect", "--type", "container", container))
    config = info["OCIv1"]["config"]
    labels = config["Labels"]
    chart = yaml.safe_load((ROOT / f"charts/{operator}-operator/Chart.yaml").read_text())
    assert labels["org.opencontainers.image.version"] == chart["appVersion"], labels
    assert labels["org.opencontainers.image.source"] and labels["org.opencontainers.image.revision"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["troupe", "run", operator]
    out = buildah("run", "--isolation", "chroot", "--network", "host", container, "--", "troupe", "plugins")
    listed = yaml.safe_load(out)
    assert {op for p in listed for op in p["operators"]} == {operator}, out
    assert all(p["kinds"] for p in listed), out
    for tool in tools:
        _, command, expected = TOOLS[tool]
        version = buildah("run", "--isolation", "chroot", container, "--", *command)
        assert version.startswith(expected), f"{' '.join(command)}: {version!r}"
    # no package manager or compiler in the final stage
    probe = "for t in pip pip3 apt apt-get dpkg gcc cc uv; do command -v $t; done; python3 -c 'import pip'"
    proc = subprocess.run(
        ["buildah", "run", "--isolation", "chroot", container, "--", "sh", "-c", probe],
        capture_output=True,
        text=True,
    )
    assert proc.stdout.strip() == "" and "No module named 'pip'" in proc.stderr, proc.stdout + proc.stderr


def example(operator: str, kinds: set[str]) -> dict[str, Any]:
    """The first example object of one of the operator's kinds, to be applied in the test's namespace."""
    for path in sorted((ROOT / "plugins" / operator / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") in kinds:
                doc["metadata"].pop("namespace", None)
                doc.pop("status", None)
                return dict(doc)
    pytest.fail(f"plugins/{operator}/examples holds no object of {kinds}")


@pytest.mark.parametrize("container", OPERATORS, indirect=True)
def test_operator_from_image_takes_lease_and_reconciles(
    container: str,
    request: pytest.FixtureRequest,
    cluster: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    operator = request.node.callspec.params["container"]
    chart = ROOT / "charts" / f"{operator}-operator"
    crds = [
        d for p in sorted((chart / "crds").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d
    ]
    kinds = {c["spec"]["names"]["kind"] for c in crds if c["spec"]["group"] != "kopf.dev"}
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(chart / "crds"))
    ns = create_namespace(new_namespace_name(f"image-{operator}"))
    helm = Helm(cluster)
    log_path = tmp_path / "operator.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        # the chart as users install it, scoped to this namespace, with its Deployment scaled to 0: the
        # operator runs from the image here instead (this cluster has no container runtime)
        # an operator that creates namespaces watches all of them (its chart refuses watchNamespaces)
        schema = json.loads((chart / "values.schema.json").read_text())
        cluster_wide = schema["properties"]["watchNamespaces"].get("maxItems") == 0
        values: dict[str, Any] = (
            {"replicaCount": 0} if cluster_wide else {"watchNamespaces": [ns], "replicaCount": 0}
        )
        helm.install(chart, ns, release=f"img-{operator}", values=values)
        monkeypatch.setenv("KUBECONFIG", cluster)  # chart_run reads the chart's Deployment with it
        monkeypatch.setenv("KUBECTL", KUBECTL)
        pod = chart_run.chart_pod(f"img-{operator}", ns, f"img-{operator}-0")
        assert "--standalone" not in pod.args  # the chart runs with leader election
        work = tmp_path / "run"
        tmp = work / "tmp"
        tmp.mkdir(parents=True)
        tmp.chmod(0o1777)
        cmd = chart_run.image_command(container, operator, pod, work / "sa", tmp, chart_run.free_port())
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

        def lease_holders() -> dict[str, Any]:
            alive = proc is not None and proc.poll() is None
            assert alive, f"the operator exited:\n{log_path.read_text()[-3000:]}"
            if cluster_wide:
                peerings = [kubectl_json("get", "clusterkopfpeering", f"troupe-{operator}")]
            else:
                peerings = kubectl_json("get", "kopfpeerings", "-n", ns)["items"]
            return {k: v for p in peerings for k, v in (p.get("status") or {}).items()}

        wait_for(lease_holders, timeout=120, describe=f"the {operator} operator to take its peering lease")
        obj = example(operator, kinds)
        kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(obj))
        name = obj["metadata"]["name"]
        done = wait_for(
            lambda: get(obj["kind"], name, ns),
            lambda o: bool(((o or {}).get("status") or {}).get("phase")),
            timeout=120,
            describe=f"{obj['kind']} {name} to reach its first phase",
        )
        print(f"\n[images] {operator}: {obj['kind']} {name} phase {done['status']['phase']}", file=sys.stderr)
        time.sleep(2)  # a write after the first status would show in the checks below
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(5)
        helm.uninstall_all()
        # the operator is gone: its finalizer on the example would hold the namespace for ever
        drop = ["bash", "tools/tilt/drop-namespace.sh", ns]
        subprocess.run(drop, cwd=ROOT, env={**os.environ, "KUBECONFIG": cluster}, check=False, timeout=120)
    log = log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]
    assert not refusals(log), log[-4000:]
    # Read-only root: the writable layer holds only the directories buildah made for its mounts.
    mounts = {"run/secrets/kubernetes.io/serviceaccount", "tmp"}
    allowed = {str(Path(m).parents[i]) for m in mounts for i in range(len(Path(m).parts) - 1)} | mounts
    written = []
    upper = upper_dir(container)
    for path in upper.rglob("*"):
        rel = str(path.relative_to(upper))
        if not (path.is_dir() and rel in allowed):
            written.append(rel)
    assert written == [], f"the operator wrote outside /tmp: {written}"
