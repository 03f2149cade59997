"""The Project and Environment kinds' spec and status models: the only source of their CRD schemas.

Every field of the seed's two examples is here under the seed's name; what the seed leaves out and a
preview system needs (credentials, the app's Service, a per-environment quota, ``ttl``, ``suspend``) is
optional, so the seed's manifests apply verbatim.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from troupe import Duration, SpecModel, StatusModel

#: A Kubernetes quantity ("1", "500m", "2Gi"): checked by the API server's own parser on the quota.
Quantity = str | int
#: An OCI tag: what the commit is pushed as, so a commit id must be a valid tag.
TAG_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class SecretRef(SpecModel):
    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")
    """A Secret in the Project's namespace."""


class ProjectSource(SpecModel):
    repository_url: str = Field(
        min_length=1,
        max_length=2048,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.startsWith('https://') || self.startsWith('http://')",
                    "message": "spec.source.repositoryUrl must be an http(s) URL of a git repository",
                }
            ]
        },
    )
    """The git repository (fetched over smart HTTP(S))."""
    branch: str = Field(default="main", min_length=1, max_length=255)
    """The default branch."""
    secret_ref: SecretRef | None = None
    """Credentials for the repository: a Secret with ``username`` and ``password`` (or ``token``) keys."""


class ServicePort(SpecModel):
    name: str = Field(default="", max_length=63)
    """The app's Service (default: the helm release's name, which is the Environment's name)."""
    port: int = Field(default=80, ge=1, le=65535)
    """The Service port the Ingress sends traffic to."""


class Deployment(SpecModel):
    type: Literal["helm", "manifest", "kustomize"] = "helm"
    """``helm`` (a chart directory), ``manifest`` (a directory of plain YAML, server-side applied) or
    ``kustomize`` (a kustomization directory, rendered with ``kubectl kustomize``)."""
    path: str = Field(
        default=".",
        min_length=1,
        max_length=1024,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!self.startsWith('/') && !self.contains('..')",
                    "message": "spec.deployment.path must be a path inside the repository (no '/', no '..')",
                }
            ]
        },
    )
    """The chart, manifests or kustomization in the repository."""
    values: dict[str, Any] = Field(default_factory=dict)
    """Helm values. ``image.repository`` is the image built and deployed for each commit; the operator
    injects ``image.tag``, ``ingress.host`` and ``env``."""
    service: ServicePort = Field(default_factory=ServicePort)
    """The Service the Environment's Ingress points at (when the operator makes the Ingress)."""
    ingress: Literal["auto", "chart", "operator", "none"] = "auto"
    """Who makes the Ingress: ``chart`` (the operator injects ``ingress.host``, ``ingress.tls: true``,
    ``ingress.className`` and the cert-manager annotation into the chart's values), ``operator`` (an
    Ingress of its own to ``service``), ``none``; ``auto``: ``chart`` for helm, else ``operator``."""


class Quota(SpecModel):
    cpu: Quantity | None = None
    """requests.cpu and limits.cpu of the environment's namespace."""
    memory: Quantity | None = None
    """requests.memory and limits.memory."""
    pods: int | None = Field(default=None, ge=0)
    """The number of pods."""


class ProjectResources(SpecModel):
    default_quota: Quota = Field(default_factory=Quota)
    """The ResourceQuota of every environment's namespace (an Environment may override it)."""


class Build(SpecModel):
    registry_secret_ref: SecretRef | None = None
    """Registry credentials for the image check: a ``kubernetes.io/dockerconfigjson`` Secret or one with
    ``username`` and ``password`` keys."""
    dockerfile: str = Field(default="Dockerfile", min_length=1, max_length=1024)
    """The Dockerfile, relative to ``context``."""
    context: str = Field(default=".", min_length=1, max_length=1024)
    """The build context in the repository."""


class ProjectSpec(SpecModel):
    source: ProjectSource
    """Where the application's code lives."""
    deployment: Deployment = Field(default_factory=Deployment)
    """How an environment deploys it."""
    resources: ProjectResources = Field(default_factory=ProjectResources)
    """Limits of each environment."""
    build: Build = Field(default_factory=Build)
    """How images are checked and built."""


class ProjectStatus(StatusModel):
    environments: int | None = None
    """How many Environments reference this Project."""


class ProjectRef(SpecModel):
    name: str = Field(min_length=1, max_length=253)
    """The Project's name."""
    namespace: str | None = Field(default=None, min_length=1, max_length=63)
    """Where the Project is (the team namespace): default the ``catalyst.dev/team`` label, else the
    Environment's own namespace."""


class EnvironmentSource(SpecModel):
    commit_sha: str = Field(min_length=1, max_length=128, pattern=TAG_PATTERN)
    """The commit to build and deploy; also the image tag."""
    branch: str = Field(default="", max_length=255)
    """The branch (a label on the namespace)."""
    pr_number: int | None = Field(default=None, ge=1)
    """The pull request, for a PR preview."""


class EnvVar(SpecModel):
    name: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    value: str = ""


class EnvironmentConfig(SpecModel):
    env_vars: list[EnvVar] = Field(default_factory=list, max_length=256)
    """Environment variables handed to the app (helm value ``env``)."""


class EnvironmentResources(SpecModel):
    quota: Quota | None = None
    """Overrides the Project's ``resources.defaultQuota`` (field by field)."""


class EnvironmentSpec(SpecModel):
    project_ref: ProjectRef
    """The Project this is an instance of."""
    type: Literal["development", "deployment"] = "development"
    """``development`` (a PR preview: the image is built when missing) or ``deployment`` (staging or
    production: the image must exist)."""
    source: EnvironmentSource
    """What to deploy."""
    config: EnvironmentConfig = Field(default_factory=EnvironmentConfig)
    """The app's configuration."""
    resources: EnvironmentResources = Field(default_factory=EnvironmentResources)
    """Limits of this environment."""
    ttl: Duration | None = None
    """Delete the Environment this long after its last change (a Warning Event comes before)."""
    suspend: bool = False
    """Scale the workloads to zero, keeping the namespace and the release."""


class BuildStatus(SpecModel):
    commit: str = ""
    job: str = ""
    phase: str = ""
    """Running, Succeeded or Failed."""
    reason: str = ""
    """Why the Job failed."""
    started_at: str | None = None
    finished_at: str | None = None


class EnvironmentStatus(StatusModel):
    url: str | None = None
    """Where the environment is served."""
    namespace: str | None = None
    """The namespace the operator created for it."""
    image: str | None = None
    """The image deployed."""
    release: str | None = None
    """The helm release (or manifest set) in the namespace."""
    deploy_type: str | None = None
    """helm, manifest or kustomize: how the last deploy ran (the finalizer uninstalls a helm release)."""
    revision: int | None = None
    """The release's revision."""
    build: BuildStatus | None = None
    """The last build Job."""
    retries: dict[str, dict[str, Any]] | None = None
    """Per step: the attempt number and consecutive failures, for the retry backoff."""
    last_change_at: str | None = None
    """When the spec last changed (the start of ``ttl``)."""
    expires_at: str | None = None
    """When ``ttl`` deletes the Environment."""
    uninstalled: bool | None = None
    """The release was uninstalled (the Environment is being deleted)."""
    namespace_deleted: bool | None = None
    """Its namespace is gone (the finalizer lets go then)."""
