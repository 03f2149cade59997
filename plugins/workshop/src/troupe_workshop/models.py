"""The Workshop API (orchestra.io/v1): the only source of its CRD schema."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from troupe import DURATION_PATTERN, SpecModel, StatusModel

#: A Kubernetes resource quantity without a sign ("1", "500m", "2Gi", "1.5G").
QUANTITY_PATTERN = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][0-9]+)?$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=32)]
Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=32)]

Phase = Literal["Pending", "Creating", "Ready", "Running", "Terminating", "Failed"]


class Resources(SpecModel):
    """CPU and memory of each RStudio instance: both requested and the limit."""

    cpu: Quantity = "1"
    """CPU, e.g. 1, 500m."""
    memory: Quantity = "2Gi"
    """Memory, e.g. 2Gi, 512Mi."""


class Storage(SpecModel):
    """The home volume of each participant."""

    size: Quantity = "10Gi"
    """Size of each PersistentVolumeClaim."""
    storage_class: str | None = Field(default=None, pattern=DNS_NAME, max_length=253)
    """StorageClass of the claims; the cluster's default when unset."""
    retain_on_expiry: bool = True
    """Keep the claims (the participants' work) when the workshop ends or is deleted. False deletes them."""


class Ingress(SpecModel):
    """External access through one Ingress host."""

    host: str | None = Field(default=None, pattern=DNS_NAME, max_length=253)
    """Host name of the workshop; each participant gets a path under it. Unset: any host."""
    annotations: dict[str, str] = Field(default_factory=dict, max_length=64)
    """Annotations copied onto the Ingress (e.g. for the ingress controller)."""
    class_name: str | None = Field(default=None, pattern=DNS_NAME, max_length=253)
    """IngressClass; the operator's default (chart value ingressClassName, traefik) when unset."""
    tls_secret_name: str | None = Field(default=None, pattern=DNS_NAME, max_length=253)
    """Serve HTTPS with the certificate in this Secret (for the host); plain HTTP when unset."""


class WorkshopSpec(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.participants) || !has(self.participantNames)",
                    "message": "set participants (a count) or participantNames (a list), not both",
                },
                {
                    "rule": "!has(self.ingress.tlsSecretName) || has(self.ingress.host)",
                    "message": "ingress.tlsSecretName needs ingress.host (the certificate is for a host)",
                },
            ]
        }
    )

    name: str | None = Field(default=None, max_length=63)
    """Workshop instance name, as shown to participants (defaults to metadata.name)."""
    duration: Duration = "4h"
    """How long the workshop runs from its start, e.g. 4h, 2h30m, 90m. Editing it moves the end."""
    image: str = Field(default="rocker/rstudio:latest", min_length=1, max_length=512, pattern=r"^\S+$")
    """RStudio container image."""
    resources: Resources = Resources()
    """CPU and memory per RStudio instance."""
    storage: Storage = Storage()
    """Home volume per participant."""
    ingress: Ingress = Ingress()
    """External access."""
    start_time: datetime | None = None
    """When the workshop starts (RFC 3339). Before it, the instances are provisioned and wait in Ready; the
    duration counts from it. Unset: the workshop starts when it is first Ready."""
    participants: int | None = Field(default=None, ge=1, le=100)
    """Number of participants, named p1, p2, ... Unset (and no participantNames): one instance."""
    participant_names: list[Annotated[str, Field(pattern=DNS_LABEL, max_length=40)]] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        json_schema_extra={
            "x-kubernetes-list-type": "set",
        },
    )
    """Participants by name (DNS labels, unique): one instance each, at /<name>/ under the host."""
    expiry_warning: Duration = "15m"
    """How long before the end the ExpiringSoon condition and a Warning event are raised."""
    termination_grace_period_seconds: int = Field(default=60, ge=0, le=3600)
    """Time RStudio gets to save sessions when the workshop ends (preStop, then SIGTERM)."""


class ParticipantStatus(SpecModel):
    """One participant's instance."""

    name: str
    url: str | None = None
    phase: str
    password_secret: str
    """The Secret holding the RStudio password (key `password`; the user is `rstudio`)."""


class WorkshopStatus(StatusModel):
    phase: Phase | None = None
    """Pending, Creating, Ready, Running, Terminating or Failed."""
    url: str | None = None
    """Where the workshop is reached (the first participant's URL when there are several)."""
    created_at: str | None = None
    """When the Workshop was created."""
    started_at: str | None = None
    """When the workshop started (spec.startTime, or when it was first Ready)."""
    expires_at: str | None = None
    """When the workshop ends: start + duration."""
    password_secret: str | None = None
    """The Secret with the (first) participant's password; the password itself is never in the status."""
    participants: list[ParticipantStatus] | None = None
    """Per-participant detail."""
    restarts: int | None = None
    """How many times the operator restarted unhealthy instances."""
    restarted_at: str | None = None
    """When the operator last restarted an unhealthy instance."""
    terminating_since: str | None = None
    """When teardown began."""
