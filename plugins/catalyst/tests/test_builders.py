"""The pure builders: namespace, quota, network policy, build Job, Ingress, values and manifest injection."""

from __future__ import annotations

from typing import Any

import pytest

from troupe_catalyst import config
from troupe_catalyst.builders import (
    build_job,
    deep_merge,
    helm_values,
    ingress,
    limit_range,
    namespace,
    network_policy,
    quota_of,
    resource_quota,
    target,
)
from troupe_catalyst.deploy import inject, not_ready
from troupe_catalyst.models import EnvironmentSpec, ProjectSpec, Quota

SETTINGS = config.Settings(preview_domain="preview.test", ingress_namespace="ingress", ingress_class="nginx")
PROJECT = ProjectSpec.model_validate(
    {
        "source": {"repositoryUrl": "https://git.test/org/app.git"},
        "deployment": {
            "path": "charts/app",
            "values": {"image": {"repository": "r.test/org/app"}, "replicaCount": 2},
        },
    }
)


def env(
    name: str = "pr-1", labels: dict[str, str] | None = None, **spec: Any
) -> tuple[dict[str, Any], EnvironmentSpec]:
    body = {
        "metadata": {"name": name, "namespace": "team-app", "labels": labels or {}},
        "spec": {
            "projectRef": {"name": "app"},
            "source": {"commitSha": "abc", "branch": "feature/login"},
            **spec,
        },
    }
    return body, EnvironmentSpec.model_validate(body["spec"])


def test_team_from_the_label_else_the_projects_namespace() -> None:
    body, spec = env(labels={"catalyst.dev/team": "my-team"})
    assert target(body, spec, SETTINGS).namespace == "my-team-app-pr-1"
    body, spec = env()  # no label: the Project is in the Environment's namespace
    assert target(body, spec, SETTINGS).namespace == "team-app-app-pr-1"
    body, spec = env(projectRef={"name": "app", "namespace": "squad"})
    assert target(body, spec, SETTINGS).team == "squad"


def test_the_namespace_carries_the_four_labels() -> None:
    body, spec = env(labels={"catalyst.dev/team": "t"})
    labels = namespace(target(body, spec, SETTINGS))["metadata"]["labels"]
    assert labels["catalyst.dev/team"] == "t" and labels["catalyst.dev/project"] == "app"
    assert labels["catalyst.dev/environment"] == "pr-1"
    assert labels["catalyst.dev/branch"].startswith("feature-login-")  # "/" is no label character


def test_quota_fields_override_one_by_one() -> None:
    project = Quota(cpu="1", memory="2Gi")
    assert quota_of(project, None) == {
        "requests.cpu": "1",
        "limits.cpu": "1",
        "requests.memory": "2Gi",
        "limits.memory": "2Gi",
    }
    assert quota_of(project, Quota(memory="4Gi", pods=5))["limits.memory"] == "4Gi"
    assert quota_of(project, Quota(pods=5))["pods"] == "5"
    body, spec = env()
    assert resource_quota(target(body, spec, SETTINGS), {}) is None


def test_network_policy_denies_by_default_and_lets_in_what_an_app_needs() -> None:
    body, spec = env()
    policy = network_policy(target(body, spec, SETTINGS), SETTINGS)["spec"]
    assert policy["podSelector"] == {} and policy["policyTypes"] == ["Ingress", "Egress"]
    sources = policy["ingress"][0]["from"]
    assert {"podSelector": {}} in sources
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}} in sources
    dns = policy["egress"][1]
    assert {"protocol": "UDP", "port": 53} in dns["ports"]


def test_ingress_host_tls_issuer_and_class() -> None:
    body, spec = env()
    manifest = ingress(target(body, spec, SETTINGS), PROJECT, SETTINGS)
    assert manifest["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    assert manifest["spec"]["tls"] == [{"hosts": ["pr-1.preview.test"], "secretName": "pr-1-tls"}]
    assert manifest["spec"]["ingressClassName"] == "nginx"
    assert manifest["spec"]["rules"][0]["host"] == "pr-1.preview.test"


def test_a_long_environment_name_still_gives_a_valid_host() -> None:
    body, spec = env(name="pr-" + "a" * 67)
    host = target(body, spec, SETTINGS).host
    assert len(host.split(".")[0]) <= 63


@pytest.mark.parametrize("builder", ["kaniko", "buildkit"])
def test_build_job(builder: str) -> None:
    settings = config.Settings(builder=builder, build_ttl_seconds=60, build_pod_annotations={"a": "b"})  # type: ignore[arg-type]
    body, spec = env()
    job = build_job(target(body, spec, settings), PROJECT, spec, settings)
    assert job["spec"]["ttlSecondsAfterFinished"] == 60 and job["metadata"]["name"] == "build-abc"
    pod = job["spec"]["template"]
    assert pod["metadata"]["annotations"] == {"a": "b"} and pod["spec"]["restartPolicy"] == "Never"
    container = pod["spec"]["containers"][0]
    if builder == "buildkit":
        assert container["image"] == config.BUILDKIT_IMAGE
        assert container["securityContext"]["seccompProfile"] == {"type": "Unconfined"}
        assert "--output=type=image,name=r.test/org/app:abc,push=true" in container["args"]
    else:
        assert container["image"] == config.KANIKO_IMAGE
        assert "--context=git://git.test/org/app.git#abc" in container["args"]
        assert "--destination=r.test/org/app:abc" in container["args"]


def test_values_keep_the_projects_and_add_what_is_injected() -> None:
    body, spec = env(config={"envVars": [{"name": "A", "value": "1"}]})
    values = helm_values(target(body, spec, SETTINGS), PROJECT, spec, SETTINGS)
    assert values["replicaCount"] == 2 and values["image"] == {"repository": "r.test/org/app", "tag": "abc"}
    assert values["ingress"]["className"] == "nginx" and values["env"] == [{"name": "A", "value": "1"}]
    operator_ingress = PROJECT.model_copy(
        update={"deployment": PROJECT.deployment.model_copy(update={"ingress": "operator"})}
    )
    assert "ingress" not in helm_values(target(body, spec, SETTINGS), operator_ingress, spec, SETTINGS)
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}


def test_manifests_get_the_image_and_env_in_their_first_container_only() -> None:
    deployment = {
        "kind": "Deployment",
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "image": "x", "env": [{"name": "A", "value": "0"}]},
                        {"name": "side", "image": "s"},
                    ]
                }
            }
        },
    }
    service = {"kind": "Service", "spec": {}}
    out = inject([deployment, service], "r/app:abc", [{"name": "A", "value": "1"}])
    containers = out[0]["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == "r/app:abc" and containers[0]["env"] == [{"name": "A", "value": "1"}]
    assert containers[1] == {"name": "side", "image": "s"} and out[1] == service
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "x"  # pure


def test_readiness_of_workloads() -> None:
    def item(ready: int, replicas: int = 1, gen: int = 1, seen: int = 1) -> dict[str, Any]:
        return {
            "kind": "deployments",
            "metadata": {"name": "a", "generation": gen},
            "spec": {"replicas": replicas},
            "status": {"readyReplicas": ready, "observedGeneration": seen},
        }

    assert not_ready([item(1)]) == []
    assert not_ready([item(0)]) == ["deployment a 0/1"]
    assert not_ready([item(1, gen=2)]) == ["deployment a 1/1"]
    assert not_ready([item(0, replicas=0)]) == []


def test_settings_from_the_environment() -> None:
    s = config.from_env(
        {
            "TROUPE_CATALYST_BUILDER": "buildkit",
            "TROUPE_CATALYST_INSECURE_REGISTRIES": "a:1,b:2",
            "TROUPE_CATALYST_BUILD_POD_ANNOTATIONS": '{"k": "v"}',
        }
    )
    assert (
        s.builder == "buildkit"
        and s.insecure_registries == ("a:1", "b:2")
        and s.build_pod_annotations == {"k": "v"}
    )
    with pytest.raises(ValueError, match="kaniko or buildkit"):
        config.from_env({"TROUPE_CATALYST_BUILDER": "docker"})


def test_a_quota_brings_container_defaults_for_what_it_limits() -> None:
    body, spec = env()
    t = target(body, spec, SETTINGS)
    limits = limit_range(t, quota_of(Quota(cpu="1"), None), SETTINGS)
    assert limits is not None
    assert limits["spec"]["limits"] == [
        {"type": "Container", "defaultRequest": {"cpu": "50m"}, "default": {"cpu": "500m"}}
    ]
    assert limit_range(t, quota_of(Quota(pods=3), None), SETTINGS) is None
