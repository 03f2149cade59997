"""The catalyst operator on a real API server, run as its chart's ServiceAccount, against a real OCI
registry (distribution, htpasswd auth) and a git server (smart HTTP, basic auth) on loopback.

kwok completes the build Job (the test pushes the image to stand for the build) and makes the app's pods
ready; helm installs the app's chart from the git repository into the generated namespace.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import harness
import pytest
from catalyst_fixtures import GitServer, Registry, running_registry, served_git
from harness import (
    HELM,
    KUBECTL,
    ROOT,
    KubectlError,
    Operator,
    apply,
    create_namespace,
    delete_namespace,
    get,
    installed_operator,
    kubectl,
    kubectl_json,
    new_namespace_name,
    wait_for,
    watch_for,
)

pytestmark = pytest.mark.e2e

EXAMPLES = ROOT / "plugins" / "catalyst" / "examples"
RELEASE = "cat"
DOMAIN = "preview.test"
GROUP = "catalyst.catalyst.dev"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with running_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    with served_git(tmp_path_factory.mktemp("git")) as server:
        yield server


@pytest.fixture(scope="module")
def operator(
    cluster: str, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    def settings(system: str) -> dict[str, str]:
        # what the chart's Deployment would pass (values environments.*, build.*, tools.*)
        return {
            "TROUPE_CATALYST_PREVIEW_DOMAIN": DOMAIN,
            "TROUPE_CATALYST_CLUSTER_ISSUER": "test-issuer",
            "TROUPE_CATALYST_INSECURE_REGISTRIES": registry.host,
            "TROUPE_CATALYST_HELM": HELM,
            "TROUPE_CATALYST_KUBECTL": KUBECTL,
            "TROUPE_CATALYST_READY_TIMEOUT_SECONDS": "60",
            # the build pod finishes 3 s after it runs: the test pushes the image meanwhile
            "TROUPE_CATALYST_BUILD_POD_ANNOTATIONS": json.dumps({"troupe.dev/kwok-delay": "3s"}),
        }

    log_dir = tmp_path_factory.mktemp("catalyst-operator")
    with installed_operator("catalyst", cluster, log_dir, release=RELEASE, env=settings) as op:
        yield op


@pytest.fixture(scope="module")
def team(operator: Operator, registry: Registry, git_server: GitServer) -> Iterator[str]:
    """A team namespace holding the repository and registry credentials; its Environments are deleted
    (and waited for) while the operator still runs, so no finalizer is left behind."""
    ns = create_namespace(new_namespace_name("cat-team"))
    apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "git"},
                "stringData": {"username": git_server.username, "password": git_server.password},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "registry"},
                "type": "kubernetes.io/dockerconfigjson",
                "stringData": {".dockerconfigjson": registry.docker_config_json()},
            },
        ],
        ns,
    )
    try:
        yield ns
    finally:
        kubectl("delete", "environments", "--all", "-n", ns, "--timeout=120s", check=False, timeout=150)
        delete_namespace(ns)


def project(name: str, registry: Registry, git_server: GitServer, **deployment: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "Project",
        "metadata": {"name": name},
        "spec": {
            "source": {"repositoryUrl": git_server.url, "branch": "main", "secretRef": {"name": "git"}},
            "deployment": {
                "type": "helm",
                "path": "charts/app",
                "values": {"image": {"repository": f"{registry.host}/org/app"}},
                **deployment,
            },
            "resources": {"defaultQuota": {"cpu": "2", "memory": "1Gi"}},
            "build": {"registrySecretRef": {"name": "registry"}},
        },
    }


def environment(name: str, project_name: str, commit: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "Environment",
        "metadata": {"name": name, "labels": {"catalyst.dev/branch": "feature-x"}},
        "spec": {
            "projectRef": {"name": project_name},
            "type": "development",
            "source": {"commitSha": commit, "branch": "feature/x", "prNumber": 7},
            "config": {"envVars": [{"name": "DEBUG", "value": "true"}]},
            **spec,
        },
    }


def env_obj(name: str, ns: str) -> dict[str, Any] | None:
    return get("environment", name, ns)


def status(obj: dict[str, Any] | None) -> dict[str, Any]:
    return (obj or {}).get("status") or {}


def cond(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    return next((c for c in status(obj).get("conditions") or [] if c["type"] == type_), {})


def wait_env(name: str, ns: str, predicate: Any, describe: str, timeout: float = 90) -> dict[str, Any]:
    return wait_for(
        lambda: env_obj(name, ns), predicate, timeout=timeout, describe=f"Environment {name}: {describe}"
    )


def wait_phase(name: str, ns: str, phase: str, timeout: float = 90) -> dict[str, Any]:
    return wait_env(name, ns, lambda o: status(o).get("phase") == phase, f"phase {phase}", timeout)


def wait_revision(name: str, ns: str, revision: int, timeout: float = 90) -> dict[str, Any]:
    """Ready with that helm release revision (a commit rolled out)."""
    return wait_env(
        name,
        ns,
        lambda o: status(o).get("revision") == revision and status(o).get("phase") == "Ready",
        f"revision {revision}",
        timeout,
    )


def patch_spec(name: str, ns: str, spec: dict[str, Any]) -> None:
    kubectl("patch", "environment", name, "-n", ns, "--type=merge", "-p", json.dumps({"spec": spec}))


def helm_json(*args: str) -> Any:
    proc = subprocess.run(
        [HELM, "--kubeconfig", str(harness.current_kubeconfig), *args, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)


def wait_gone(kind: str, name: str, ns: str | None = None, timeout: float = 90) -> None:
    wait_for(lambda: get(kind, name, ns) is None, timeout=timeout, describe=f"{kind} {name} to be gone")


def delete_environment(name: str, ns: str, target_ns: str | None = None) -> None:
    """Delete an Environment and wait until it is gone, and its namespace ``target_ns`` with it if given."""
    kubectl("delete", "environment", name, "-n", ns, "--wait=false")
    wait_gone("environment", name, ns)
    if target_ns is not None:
        wait_gone("namespace", target_ns)


def app_environment(name: str, team: str, registry: Registry, git_server: GitServer, **spec: Any) -> None:
    """The "app" Project and an Environment of it at the first commit, whose image is there (no build)."""
    apply(project("app", registry, git_server), team)
    registry.push_image("org/app", git_server.first_commit)
    apply(environment(name, "app", git_server.first_commit, **spec), team)


def test_seed_manifests(operator: Operator, registry: Registry) -> None:
    """The seed's Project applies verbatim; its Environment cannot (a label value with "/"), the same one
    with a valid label does, gets its namespace, and says the seed's registry cannot be reached."""
    created = []
    for ns in ("my-team", "my-team-my-project"):
        if get("namespace", ns) is None:
            create_namespace(ns)
            created.append(ns)
    try:
        kubectl("apply", "-f", str(EXAMPLES / "project.yaml"))
        with pytest.raises(KubectlError, match=r'metadata.labels: Invalid value: "feature/login"'):
            kubectl("apply", "-f", str(EXAMPLES / "environment.yaml"))
        kubectl("apply", "-f", str(EXAMPLES / "environment-applicable.yaml"))
        env = wait_env(
            "pr-123",
            "my-team-my-project",
            lambda o: cond(o, "BuildReady").get("reason") == "RegistryUnavailable",
            "registry.cluster.local unreachable",
        )
        assert status(env)["phase"] == "Failed" and status(env)["url"] == f"https://pr-123.{DOMAIN}"
        assert "registry.cluster.local" in cond(env, "BuildReady")["message"]
        assert "checking again at" in cond(env, "BuildReady")["message"]
        assert cond(env, "NamespaceReady")["status"] == "True"
        ns = get("namespace", "my-team-my-project-pr-123")
        assert ns is not None
        assert ns["metadata"]["labels"]["catalyst.dev/team"] == "my-team"
        assert ns["metadata"]["labels"]["catalyst.dev/project"] == "my-project"
        assert ns["metadata"]["labels"]["catalyst.dev/environment"] == "pr-123"
        assert ns["metadata"]["labels"]["catalyst.dev/branch"].startswith("feature-login")
        assert not ns["metadata"].get("ownerReferences")
        quota = get("resourcequota", "catalyst-quota", "my-team-my-project-pr-123")
        assert quota is not None and quota["spec"]["hard"]["limits.memory"] == "2Gi"
        project_obj = get("project", "my-project", "my-team")
        wait_for(
            lambda: get("project", "my-project", "my-team"),
            lambda o: status(o).get("environments") == 1,
            describe="the seed Project to count 1 Environment",
        )
        assert project_obj is not None
        delete_environment("pr-123", "my-team-my-project", "my-team-my-project-pr-123")
    finally:
        kubectl("delete", "-f", str(EXAMPLES / "project.yaml"), "--ignore-not-found", check=False)
        for ns in created:
            delete_namespace(ns)


def test_a_project_counts_the_environments_naming_it_as_they_come_and_go(
    operator: Operator, team: str, registry: Registry, git_server: GitServer
) -> None:
    # the count comes from the core's reverse references (ctx.referrers): a Project is reconciled again
    # whenever an Environment naming it is created or deleted; the plugin watches nothing itself
    apply(project("counted", registry, git_server), team)

    def counts(n: int) -> None:
        wait_for(
            lambda: get("project", "counted", team),
            lambda o: status(o).get("environments") == n,
            describe=f"Project counted to count {n} Environments",
        )

    counts(0)
    sha = git_server.first_commit
    apply(environment("c1", "counted", sha), team)
    counts(1)
    apply(environment("c2", "counted", sha), team)
    counts(2)
    delete_environment("c1", team, f"{team}-counted-c1")
    counts(1)
    delete_environment("c2", team, f"{team}-counted-c2")
    counts(0)


def test_pr_environment_builds_deploys_upgrades_survives_the_registry_and_is_deleted(
    operator: Operator, team: str, registry: Registry, git_server: GitServer
) -> None:
    apply(project("app", registry, git_server), team)
    sha = git_server.first_commit
    apply(environment("pr-7", "app", sha), team)
    target_ns = f"{team}-app-pr-7"
    # the image is missing: a build Job in the environment's namespace
    job = wait_for(lambda: get("job", f"build-{sha}", target_ns), describe="the build Job")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert f"--destination={registry.host}/org/app:{sha}" in container["args"]
    assert job["spec"]["ttlSecondsAfterFinished"] == 3600
    assert not job["metadata"].get("ownerReferences")
    assert job["metadata"]["annotations"]["troupe.dev/owner"].endswith(f"/{team}/pr-7")
    registry.push_image("org/app", sha)  # stands for the build's push
    env = wait_phase("pr-7", team, "Ready", timeout=120)
    st = status(env)
    assert st["url"] == f"https://pr-7.{DOMAIN}" and st["namespace"] == target_ns and st["revision"] == 1
    assert st["build"]["phase"] == "Succeeded" and st["image"] == f"{registry.host}/org/app:{sha}"
    for type_ in ("NamespaceReady", "BuildReady", "DeploymentReady", "Ready"):
        assert cond(env, type_)["status"] == "True", type_
    # helm installed the chart into the generated namespace, with the injected values
    release = helm_json("status", "pr-7", "-n", target_ns)
    assert release["info"]["status"] == "deployed" and release["version"] == 1
    deployment = get("deployment", "pr-7", target_ns)
    assert deployment is not None
    app = deployment["spec"]["template"]["spec"]["containers"][0]
    assert app["image"] == f"{registry.host}/org/app:{sha}"
    assert {"name": "DEBUG", "value": "true"} in app["env"]
    ingress = get("ingress", "pr-7", target_ns)
    assert ingress is not None
    assert ingress["spec"]["rules"][0]["host"] == f"pr-7.{DOMAIN}"
    assert ingress["spec"]["tls"] == [{"hosts": [f"pr-7.{DOMAIN}"], "secretName": "pr-7-tls"}]
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "test-issuer"
    # the namespace's guard rails, and one put back when deleted
    policy = get("networkpolicy", "catalyst-default-deny", target_ns)
    assert policy is not None and policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    kubectl("delete", "networkpolicy", "catalyst-default-deny", "-n", target_ns)
    wait_for(lambda: get("networkpolicy", "catalyst-default-deny", target_ns), describe="the policy put back")
    assert get("resourcequota", "catalyst-quota", target_ns)["spec"]["hard"]["limits.cpu"] == "2"  # type: ignore[index]

    # a second commit whose image exists: no build, the release upgraded to revision 2
    sha2 = git_server.commit("second", {"index.html": "<h1>two</h1>\n"})
    registry.push_image("org/app", sha2)
    patch_spec("pr-7", team, {"source": {"commitSha": sha2}})
    wait_revision("pr-7", team, 2)
    assert helm_json("status", "pr-7", "-n", target_ns)["version"] == 2
    assert get("deployment", "pr-7", target_ns)["spec"]["template"]["spec"]["containers"][0][
        "image"
    ].endswith(sha2)  # type: ignore[index]
    assert get("job", f"build-{sha2}", target_ns) is None

    # the registry goes away during a third commit: nothing is deleted, and it recovers
    sha3 = git_server.commit("third", {"index.html": "<h1>three</h1>\n"})
    with registry.down():
        patch_spec("pr-7", team, {"source": {"commitSha": sha3}})
        env = wait_env(
            "pr-7",
            team,
            lambda o: cond(o, "BuildReady").get("reason") == "RegistryUnavailable",
            "registry unavailable",
        )
        assert status(env)["phase"] == "Failed" and "checking again at" in cond(env, "BuildReady")["message"]
        assert helm_json("status", "pr-7", "-n", target_ns)["version"] == 2  # the last good release stays
        assert get("deployment", "pr-7", target_ns) is not None and get("namespace", target_ns) is not None
    registry.push_image("org/app", sha3)
    wait_revision("pr-7", team, 3, timeout=120)

    # deletion: the release is uninstalled, the namespace deleted, then the Environment goes
    delete_environment("pr-7", team, target_ns)


def test_missing_project_fails_then_a_manifest_project_deploys_into_a_hashed_namespace(
    operator: Operator, team: str, registry: Registry, git_server: GitServer
) -> None:
    name = "pr-" + "l" * 67
    assert len(name) == 70
    sha = git_server.first_commit
    registry.push_image("org/plain", sha)
    apply(environment(name, "plain", sha), team)
    env = wait_env(name, team, lambda o: cond(o, "Ready").get("reason") == "ProjectMissing", "ProjectMissing")
    assert (
        status(env)["phase"] == "Failed"
        and f"Project {team}/plain does not exist" in cond(env, "Ready")["message"]
    )
    plain = project("plain", registry, git_server, type="manifest", path="deploy", service={"name": "app"})
    plain["spec"]["deployment"]["values"] = {"image": {"repository": f"{registry.host}/org/plain"}}
    apply(plain, team)
    env = wait_phase(name, team, "Ready")
    target_ns = status(env)["namespace"]
    assert len(target_ns) <= 63 and target_ns.startswith(f"{team}-plain-pr-ll") and target_ns[-9] == "-"
    deployment = get("deployment", "app", target_ns)
    assert deployment is not None
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["image"] == f"{registry.host}/org/plain:{sha}"
    )
    ingresses = kubectl_json("get", "ingress", "-n", target_ns)["items"]
    assert len(ingresses) == 1, ingresses  # the operator's own: a manifest Project has no chart to make one
    backend = ingresses[0]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "app", "port": {"number": 80}}
    assert status(env).get("revision") is None  # no helm release: manifests are applied
    delete_environment(name, team, target_ns)


def test_a_namespace_someone_else_has_is_refused_and_kept(
    operator: Operator, team: str, registry: Registry, git_server: GitServer
) -> None:
    apply(project("app", registry, git_server), team)
    taken = create_namespace(f"{team}-app-taken")
    try:
        apply(environment("taken", "app", git_server.first_commit), team)
        env = wait_env(
            "taken", team, lambda o: cond(o, "NameConflict").get("status") == "True", "NameConflict"
        )
        assert taken in cond(env, "NameConflict")["message"]
        assert get("resourcequota", "catalyst-quota", taken) is None
        delete_environment("taken", team)
        ns = get("namespace", taken)
        assert ns is not None and not ns["metadata"].get("deletionTimestamp")  # never adopted, never deleted
    finally:
        delete_namespace(taken)


def test_sigkill_during_helm_does_not_install_twice(
    operator: Operator, team: str, registry: Registry, git_server: GitServer
) -> None:
    app_environment("kill", team, registry, git_server, type="deployment")
    # watched, not polled: the deploy may run for less than a second on an idle cluster
    watch_for(
        f"environments.{GROUP}",
        "kill",
        team,
        lambda o: (status(o).get("actions") or {}).get("deploy", {}).get("phase") == "Running",
        timeout=60,
        describe="Environment kill: deploy running",
    )
    operator.kill_and_restart()
    env = wait_phase("kill", team, "Ready", timeout=120)
    target_ns = status(env)["namespace"]
    history = helm_json("history", "kill", "-n", target_ns)
    assert [h["status"] for h in history] == ["deployed"] and history[0]["revision"] == 1, history
    delete_environment("kill", team, target_ns)


def test_suspend_scales_to_zero_and_ttl_deletes_with_a_warning_first(
    operator: Operator, team: str, registry: Registry, git_server: GitServer
) -> None:
    app_environment("nap", team, registry, git_server, type="deployment")
    env = wait_phase("nap", team, "Ready")
    target_ns = status(env)["namespace"]
    patch_spec("nap", team, {"suspend": True})
    wait_phase("nap", team, "Suspended")
    assert get("deployment", "nap", target_ns)["spec"]["replicas"] == 0  # type: ignore[index]
    assert helm_json("status", "nap", "-n", target_ns)["version"] == 1  # the release stays
    patch_spec("nap", team, {"suspend": False})
    wait_phase("nap", team, "Ready")
    assert get("deployment", "nap", target_ns)["spec"]["replicas"] == 1  # type: ignore[index]
    # a TTL: a Warning Event a quarter of it before the end, then the Environment deletes itself
    patch_spec("nap", team, {"ttl": "20s"})
    wait_env(
        "nap", team, lambda o: cond(o, "ExpiringSoon").get("status") == "True", "ExpiringSoon", timeout=40
    )
    events = kubectl_json("get", "events", "-n", team, "--field-selector", "involvedObject.name=nap")["items"]
    assert any(e["type"] == "Warning" and e["reason"] == "TTLExpiring" for e in events), events
    wait_gone("environment", "nap", team, timeout=60)
    wait_gone("namespace", target_ns)
    metrics = (
        urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5).read().decode()
    )
    assert re.search(r'troupe_catalyst_deploy_duration_seconds_count\{result="success"\} [1-9]', metrics)
    assert 'troupe_catalyst_objects{kind="Project",phase="Ready"}' in metrics


def test_bad_input_is_refused_with_the_field(operator: Operator, team: str) -> None:
    bad = environment("bad", "app", "not a tag!")
    with pytest.raises(KubectlError, match=r"spec.source.commitSha"):
        apply(bad, team)
    bad_project = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "Project",
        "metadata": {"name": "bad"},
        "spec": {"source": {"repositoryUrl": "ssh://git@x/y"}, "deployment": {"path": "../etc"}},
    }
    with pytest.raises(KubectlError, match=r"repositoryUrl must be an http\(s\) URL"):
        apply(bad_project, team)
