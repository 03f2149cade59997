"""Operator-wide settings of the catalyst operator, from its environment (the chart sets them)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Literal

ENV_PREFIX = "TROUPE_CATALYST_"

#: A maintained fork of the archived GoogleContainerTools/kaniko (Chainguard's), and BuildKit rootless.
KANIKO_IMAGE = "cgr.dev/chainguard/kaniko:latest"
BUILDKIT_IMAGE = "moby/buildkit:v0.25.2-rootless"


@dataclass(frozen=True)
class Settings:
    """What every Environment of this installation shares."""

    preview_domain: str = "preview.catalyst.dev"
    ingress_class: str = ""
    cluster_issuer: str = "letsencrypt"
    #: The namespace of the ingress controller: the only one (besides DNS) that may reach an app.
    ingress_namespace: str = "ingress-nginx"
    builder: Literal["kaniko", "buildkit"] = "kaniko"
    builder_image: str = ""
    build_ttl_seconds: int = 3600
    build_pod_annotations: dict[str, str] = field(default_factory=dict)
    #: Registries spoken to over plain HTTP (a loopback registry in tests).
    insecure_registries: tuple[str, ...] = ()
    helm: str = "helm"
    kubectl: str = "kubectl"
    git: str = "git"
    #: How long the deploy step waits for the workloads to become ready.
    ready_timeout: float = 300.0
    #: The LimitRange defaults of containers that name no resources (a quota makes them mandatory).
    default_requests: dict[str, str] = field(default_factory=lambda: {"cpu": "50m", "memory": "64Mi"})
    default_limits: dict[str, str] = field(default_factory=lambda: {"cpu": "500m", "memory": "512Mi"})

    @property
    def image_of_builder(self) -> str:
        return self.builder_image or (BUILDKIT_IMAGE if self.builder == "buildkit" else KANIKO_IMAGE)


def from_env(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)

    def get(name: str, default: str) -> str:
        return env.get(f"{ENV_PREFIX}{name}", "") or default

    builder = get("BUILDER", "kaniko")
    if builder not in ("kaniko", "buildkit"):
        raise ValueError(f"{ENV_PREFIX}BUILDER must be kaniko or buildkit, not {builder!r}")
    annotations = json.loads(get("BUILD_POD_ANNOTATIONS", "{}"))
    return Settings(
        preview_domain=get("PREVIEW_DOMAIN", "preview.catalyst.dev"),
        ingress_class=get("INGRESS_CLASS", ""),
        cluster_issuer=get("CLUSTER_ISSUER", "letsencrypt"),
        ingress_namespace=get("INGRESS_NAMESPACE", "ingress-nginx"),
        builder="buildkit" if builder == "buildkit" else "kaniko",
        builder_image=get("BUILDER_IMAGE", ""),
        build_ttl_seconds=int(get("BUILD_TTL_SECONDS", "3600")),
        build_pod_annotations={str(k): str(v) for k, v in annotations.items()},
        insecure_registries=tuple(h for h in get("INSECURE_REGISTRIES", "").split(",") if h),
        helm=get("HELM", "helm"),
        kubectl=get("KUBECTL", "kubectl"),
        git=get("GIT", "git"),
        ready_timeout=float(get("READY_TIMEOUT_SECONDS", "300")),
        default_requests=json.loads(get("DEFAULT_REQUESTS", '{"cpu": "50m", "memory": "64Mi"}')),
        default_limits=json.loads(get("DEFAULT_LIMITS", '{"cpu": "500m", "memory": "512Mi"}')),
    )
