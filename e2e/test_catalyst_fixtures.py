"""The catalyst e2e fixtures themselves (e2e/catalyst_fixtures.py): a registry and a git server on loopback.

No cluster: these check that the stand-ins behave like the real things the operator will meet.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from catalyst_fixtures import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    MANIFEST_MEDIA_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    GitServer,
    Registry,
    RegistryError,
    git,
    git_env,
    tag_exists,
)
from harness import HELM

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

# what each kind of push puts under the tag
TAG_TYPE = {
    "oci": OCI_MANIFEST,
    "oci-index": OCI_INDEX,
    "docker": DOCKER_MANIFEST,
    "docker-list": DOCKER_LIST,
}


@pytest.mark.parametrize("kind", sorted(TAG_TYPE))
def test_pushed_image_is_found_with_the_four_media_types(registry: Registry, kind: str) -> None:
    repository = f"org/app-{kind}"
    assert not registry.tag_exists(repository, "abc123")
    digest = registry.push_image(repository, "abc123", kind=kind)
    assert digest.startswith("sha256:")
    assert registry.manifest_digest(repository, "abc123") == digest
    # the tag's own type alone finds it too
    assert registry.tag_exists(repository, "abc123", accept=[TAG_TYPE[kind]])
    assert not registry.tag_exists(repository, "other")


def test_an_oci_image_looks_absent_without_its_media_type(registry: Registry) -> None:
    """Why the operator must send all four types: distribution answers 404 for an OCI manifest otherwise."""
    registry.push_image("org/app", "v1", kind="oci")
    others = [t for t in MANIFEST_MEDIA_TYPES if t != OCI_MANIFEST]
    assert not registry.tag_exists("org/app", "v1", accept=others)
    assert registry.tag_exists("org/app", "v1")


def test_registry_requires_its_credentials(registry: Registry) -> None:
    registry.push_image("org/app", "v1")
    with pytest.raises(RegistryError, match="HTTP 401"):
        tag_exists(registry.url, "org/app", "v1")
    with pytest.raises(RegistryError, match="HTTP 401"):
        tag_exists(registry.url, "org/app", "v1", registry.username, "wrong")


def test_registry_restart_keeps_the_image(registry: Registry) -> None:
    digest = registry.push_image("org/app", "v1")
    with registry.down():
        assert not registry.running
        with pytest.raises(OSError):
            registry.tag_exists("org/app", "v1")
    assert registry.running
    assert registry.manifest_digest("org/app", "v1") == digest
    registry.restart()
    assert registry.manifest_digest("org/app", "v1") == digest


def test_docker_config_json_names_the_registry(registry: Registry) -> None:
    import base64
    import json

    auths = json.loads(registry.docker_config_json())["auths"]
    entry = auths[registry.host]
    assert base64.b64decode(entry["auth"]).decode() == f"{registry.username}:{registry.password}"


def clone(url: str, dest: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "clone", "-q", url, str(dest)], env=git_env(), capture_output=True, text=True, timeout=30
    )


def test_git_clone_needs_the_credentials(git_server: GitServer, tmp_path: Path) -> None:
    refused = clone(git_server.url, tmp_path / "anonymous")
    # asked for a user name (the server said 401), and no prompt here to give one
    assert refused.returncode != 0 and "could not read Username" in refused.stderr, refused.stderr
    wrong = git_server.url_with_credentials().replace(git_server.password, "wrong")
    refused = clone(wrong, tmp_path / "wrong")
    assert refused.returncode != 0 and "Authentication failed" in refused.stderr, refused.stderr
    done = clone(git_server.url_with_credentials(), tmp_path / "app")
    assert done.returncode == 0, done.stderr
    assert git("rev-parse", "HEAD", cwd=tmp_path / "app").stdout.strip() == git_server.first_commit
    for path in (
        "charts/app/Chart.yaml",
        "Dockerfile",
        "deploy/deployment.yaml",
        "kustomize/kustomization.yaml",
    ):
        assert (tmp_path / "app" / path).is_file(), path


def test_second_commit_is_fetched_at_its_sha(git_server: GitServer, tmp_path: Path) -> None:
    work = tmp_path / "app"
    assert clone(git_server.url_with_credentials(), work).returncode == 0
    values = yaml.safe_load((work / "charts/app/values.yaml").read_text())
    values["replicaCount"] = 2
    sha = git_server.commit(
        "two replicas", {"charts/app/values.yaml": yaml.safe_dump(values), "Dockerfile": None}
    )
    assert sha != git_server.first_commit and git_server.head() == sha
    # what the operator does: fetch that one commit and check it out
    git("fetch", "-q", "origin", sha, cwd=work)
    git("checkout", "-q", sha, cwd=work)
    assert yaml.safe_load((work / "charts/app/values.yaml").read_text())["replicaCount"] == 2
    assert not (work / "Dockerfile").exists()
    feature = git_server.commit("login page", {"login.html": "<p>login</p>"}, branch="feature/login")
    assert git_server.head("feature/login") == feature and git_server.head() == sha


def test_git_daemon_serves_the_same_repository(git_server: GitServer, tmp_path: Path) -> None:
    url = git_server.start_daemon()
    done = clone(url, tmp_path / "app")
    assert done.returncode == 0, done.stderr
    assert git("rev-parse", "HEAD", cwd=tmp_path / "app").stdout.strip() == git_server.first_commit


def test_app_chart_lints_and_renders_the_injected_values(git_server: GitServer) -> None:
    chart = git_server.work / "charts" / "app"
    lint = subprocess.run([HELM, "lint", "--strict", str(chart)], capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    values = [
        "image.repository=127.0.0.1:5000/org/app",
        "image.tag=abc123",
        "ingress.host=pr-1.preview.example.com",
        "ingress.tls=true",
        "env[0].name=DEBUG",
        "env[0].value=true",
    ]
    args = [HELM, "template", "pr-1", str(chart)] + [a for v in values for a in ("--set", v)]
    args += ["--set", r"ingress.annotations.cert-manager\.io/cluster-issuer=letsencrypt"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout
    docs = {d["kind"]: d for d in yaml.safe_load_all(out) if d}
    assert set(docs) == {"Deployment", "Service", "Ingress"}
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "127.0.0.1:5000/org/app:abc123"
    assert container["env"] == [{"name": "DEBUG", "value": "true"}]
    ingress = docs["Ingress"]["spec"]
    assert ingress["tls"] == [{"hosts": ["pr-1.preview.example.com"], "secretName": "pr-1-tls"}]
    assert (
        ingress["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
        == docs["Service"]["metadata"]["name"]
    )
    assert docs["Ingress"]["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    plain = subprocess.run([HELM, "template", "pr-1", str(chart)], capture_output=True, text=True, check=True)
    assert "kind: Ingress" not in plain.stdout  # no host, no Ingress


def test_shallow_fetch_of_a_commit_with_an_authorization_header(
    git_server: GitServer, tmp_path: Path
) -> None:
    """The operator's way: an empty repository, a commit fetched by sha at depth 1, auth in a header."""
    second = git_server.commit("second", {"NOTES": "second commit\n"})
    work = tmp_path / "checkout"
    git("init", "-q", str(work))
    header = f"http.extraHeader=Authorization: {git_server.basic_auth()}"
    for sha in (git_server.first_commit, second):
        git("-c", header, "-C", str(work), "fetch", "-q", "--depth=1", git_server.url, sha)
        git("-C", str(work), "checkout", "-q", "--detach", sha)
        assert git("-C", str(work), "rev-parse", "HEAD").stdout.strip() == sha
    assert (work / "NOTES").read_text() == "second commit\n"
    refused = git("-C", str(work), "fetch", "-q", "--depth=1", git_server.url, second, check=False)
    assert refused.returncode != 0
