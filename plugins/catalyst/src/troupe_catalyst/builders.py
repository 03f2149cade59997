"""Pure builders of an Environment's children: its Namespace, quota, network policy, build Job, Ingress.

Everything here is a function of the specs and settings handed in; the deploy itself (git, helm) is a
long-running action (``deploy.py``), not a child.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troupe import Manifest, dns1123_label, label_value
from troupe_catalyst.config import Settings
from troupe_catalyst.models import EnvironmentSpec, ProjectSpec, Quota
from troupe_catalyst.names import build_job_name, namespace_name, release_name

TEAM_LABEL = "catalyst.dev/team"
PROJECT_LABEL = "catalyst.dev/project"
ENVIRONMENT_LABEL = "catalyst.dev/environment"
BRANCH_LABEL = "catalyst.dev/branch"
QUOTA_NAME = "catalyst-quota"
LIMITS_NAME = "catalyst-defaults"
POLICY_NAME = "catalyst-default-deny"
ISSUER_ANNOTATION = "cert-manager.io/cluster-issuer"
NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Target:
    """Where and what one Environment deploys, derived from its metadata and spec."""

    environment: str
    team: str
    project: str
    branch: str
    namespace: str
    release: str
    host: str

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    def labels(self) -> dict[str, str]:
        labels = {
            TEAM_LABEL: label_value(self.team),
            PROJECT_LABEL: label_value(self.project),
            ENVIRONMENT_LABEL: label_value(self.environment),
        }
        if self.branch:
            labels[BRANCH_LABEL] = label_value(self.branch)
        return labels


def project_namespace(body: Manifest) -> str:
    """Where the Project is: ``projectRef.namespace``, else the team label, else the Environment's own."""
    meta = body.get("metadata") or {}
    ref = (body.get("spec") or {}).get("projectRef") or {}
    team = (meta.get("labels") or {}).get(TEAM_LABEL)
    return str(ref.get("namespace") or team or meta.get("namespace") or "")


def target(body: Manifest, spec: EnvironmentSpec, settings: Settings) -> Target:
    meta = body["metadata"]
    labels = meta.get("labels") or {}
    name = str(meta["name"])
    team = str(labels.get(TEAM_LABEL) or project_namespace(body))
    project = spec.project_ref.name
    branch = spec.source.branch or str(labels.get(BRANCH_LABEL) or "")
    host_label = dns1123_label(name)
    return Target(
        environment=name,
        team=team,
        project=project,
        branch=branch,
        namespace=namespace_name(team, project, name),
        release=release_name(name),
        host=f"{host_label}.{settings.preview_domain}",
    )


def namespace(t: Target) -> Manifest:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": t.namespace, "labels": t.labels()}}


def quota_of(project: Quota, override: Quota | None) -> dict[str, Any]:
    """The ResourceQuota's ``hard``: the Project's default, each field overridden by the Environment's."""
    cpu = override.cpu if override and override.cpu is not None else project.cpu
    memory = override.memory if override and override.memory is not None else project.memory
    pods = override.pods if override and override.pods is not None else project.pods
    hard: dict[str, Any] = {}
    if cpu is not None:
        hard["requests.cpu"] = hard["limits.cpu"] = str(cpu)
    if memory is not None:
        hard["requests.memory"] = hard["limits.memory"] = str(memory)
    if pods is not None:
        hard["pods"] = str(pods)
    return hard


def resource_quota(t: Target, hard: dict[str, Any]) -> Manifest | None:
    if not hard:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": QUOTA_NAME, "namespace": t.namespace, "labels": t.labels()},
        "spec": {"hard": hard},
    }


def limit_range(t: Target, hard: dict[str, Any], settings: Settings) -> Manifest | None:
    """Container defaults, so pods that name no resources still start under the quota (which demands them)."""
    kinds = {key.split(".")[-1] for key in hard if key.startswith(("requests.", "limits."))}
    if not kinds:
        return None
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": LIMITS_NAME, "namespace": t.namespace, "labels": t.labels()},
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "defaultRequest": {k: v for k, v in settings.default_requests.items() if k in kinds},
                    "default": {k: v for k, v in settings.default_limits.items() if k in kinds},
                }
            ]
        },
    }


def network_policy(t: Target, settings: Settings) -> Manifest:
    """Default deny, then what an app needs: its own namespace, DNS, and the ingress controller."""
    same: dict[str, Any] = {"podSelector": {}}
    ingress_controller = {"namespaceSelector": {"matchLabels": {NAME_LABEL: settings.ingress_namespace}}}
    dns = {
        "to": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "kube-system"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": POLICY_NAME, "namespace": t.namespace, "labels": t.labels()},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [same, ingress_controller]}],
            "egress": [{"to": [same]}, dns],
        },
    }


def git_context(repository_url: str, commit: str) -> str:
    """Kaniko's git build context: ``git://host/path#<commit>``."""
    return "git://" + repository_url.split("://", 1)[-1] + f"#{commit}"


def build_job(t: Target, project: ProjectSpec, spec: EnvironmentSpec, settings: Settings) -> Manifest:
    """A Job that builds the repository at the commit and pushes ``<repository>:<commit>``.

    Kaniko-style by default (a maintained fork's image); BuildKit rootless when the chart says so, which
    needs ``seccomp: Unconfined`` and so cannot run in a namespace enforcing the restricted profile.
    """
    commit = spec.source.commit_sha
    image = f"{image_repository(project)}:{commit}"
    build = project.build
    if settings.builder == "buildkit":
        container: dict[str, Any] = {
            "name": "build",
            "image": settings.image_of_builder,
            "command": ["buildctl-daemonless.sh"],
            "args": [
                "build",
                "--frontend=dockerfile.v0",
                f"--opt=context={project.source.repository_url}#{commit}",
                f"--opt=filename={build.dockerfile}",
                f"--output=type=image,name={image},push=true",
            ],
            "env": [{"name": "BUILDKITD_FLAGS", "value": "--oci-worker-no-process-sandbox"}],
            "securityContext": {"seccompProfile": {"type": "Unconfined"}, "runAsUser": 1000},
        }
    else:
        container = {
            "name": "build",
            "image": settings.image_of_builder,
            "args": [
                f"--context={git_context(project.source.repository_url, commit)}",
                f"--context-sub-path={build.context}",
                f"--dockerfile={build.dockerfile}",
                f"--destination={image}",
            ],
        }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": build_job_name(commit), "namespace": t.namespace, "labels": t.labels()},
        "spec": {
            "backoffLimit": 1,
            "ttlSecondsAfterFinished": settings.build_ttl_seconds,
            "template": {
                "metadata": {"labels": t.labels(), "annotations": dict(settings.build_pod_annotations)},
                "spec": {"restartPolicy": "Never", "containers": [container]},
            },
        },
    }


def ingress(t: Target, project: ProjectSpec, settings: Settings) -> Manifest:
    service = project.deployment.service
    spec: dict[str, Any] = {
        "tls": [{"hosts": [t.host], "secretName": dns1123_label(t.release, "tls")}],
        "rules": [
            {
                "host": t.host,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {
                                "service": {
                                    "name": service.name or t.release,
                                    "port": {"number": service.port},
                                }
                            },
                        }
                    ]
                },
            }
        ],
    }
    if settings.ingress_class:
        spec["ingressClassName"] = settings.ingress_class
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": t.release,
            "namespace": t.namespace,
            "labels": t.labels(),
            "annotations": {ISSUER_ANNOTATION: settings.cluster_issuer},
        },
        "spec": spec,
    }


def image_repository(project: ProjectSpec) -> str:
    image = project.deployment.values.get("image")
    return str(image.get("repository") or "") if isinstance(image, dict) else ""


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        old = merged.get(key)
        merged[key] = deep_merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return merged


def ingress_by(project: ProjectSpec) -> str:
    """``chart``, ``operator`` or ``none``: who makes the Environment's Ingress."""
    mode = project.deployment.ingress
    if mode == "auto":
        return "chart" if project.deployment.type == "helm" else "operator"
    return mode


def helm_values(t: Target, project: ProjectSpec, spec: EnvironmentSpec, settings: Settings) -> dict[str, Any]:
    """The Project's values with what the operator injects: image tag, ingress host and TLS, env vars."""
    injected: dict[str, Any] = {
        "image": {"repository": image_repository(project), "tag": spec.source.commit_sha},
        "env": [{"name": v.name, "value": v.value} for v in spec.config.env_vars],
    }
    if not injected["image"]["repository"]:
        del injected["image"]["repository"]
    if ingress_by(project) == "chart":
        injected["ingress"] = {
            "host": t.host,
            "tls": True,
            "annotations": {ISSUER_ANNOTATION: settings.cluster_issuer},
        }
        if settings.ingress_class:
            injected["ingress"]["className"] = settings.ingress_class
    return deep_merge(project.deployment.values, injected)
