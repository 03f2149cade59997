"""The Workshop API (orchestra.io/v1): the only source of its CRD schema.

Every bound the operator relies on is in the schema (patterns, lengths, CEL), so the API server refuses
bad input with the field's name; the model repeats the CEL rules as validators, so a spec that reached
the operator some other way still ends ``Failed`` with reason ``InvalidSpec`` instead of looping.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field

from troupe import MAX_DURATION, Duration, SpecModel, StatusModel, parse_duration

#: A Kubernetes resource quantity without a sign ("1", "500m", "2Gi", "1.5G"); at most 12 digits before
#: the point and 9 after, and a two-digit exponent: far past any machine, and no 300-digit numbers.
QUANTITY_PATTERN = r"^([0-9]{1,12}(\.[0-9]{0,9})?|\.[0-9]{1,9})([KMGTPE]i|[numkMGTPE]|[eE][0-9]{1,2})?$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
#: Any digit 1-9 before the unit: the value is more than zero (all-zero digits are the only zero).
NONZERO_QUANTITY = r"^[0.]*[1-9]"
#: An Ingress host must not be an IP address (the API server refuses it only when the Ingress is applied).
NUMERIC_HOST = r"^[0-9.]+$"
#: The seconds of a duration (the grammar of ``troupe.Duration``) in CEL, so the API server itself holds
#: the bounds: "ms" is tested before "s", and the pattern has already refused anything else.
DURATION_SECONDS = (
    "self.findAll('[0-9.]+(ms|s|m|h|d)').map(p, double(p.find('^[0-9.]+')) * (p.endsWith('ms') ? 0.001"
    " : p.endsWith('s') ? 1.0 : p.endsWith('m') ? 60.0 : p.endsWith('h') ? 3600.0 : 86400.0)).sum()"
)
MIN_DURATION = timedelta(minutes=1)
#: startTime lies in [EARLIEST, LATEST): CEL in a CRD has no clock, so the API server can only hold a
#: fixed range; this one keeps start + duration (at most 100 years) far from the end of the calendar.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
#: An annotation key: an optional DNS-subdomain prefix and '/', then a name of at most 63 characters.
ANNOTATION_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


def _not_an_ip(value: str) -> str:
    if re.match(NUMERIC_HOST, value):
        raise ValueError("must be a DNS name, not an IP address")
    return value


def _cel(rule: str, message: str) -> dict[str, object]:
    return {"x-kubernetes-validations": [{"rule": rule, "message": message}]}


def _nonzero_quantity(value: str) -> str:
    if not re.match(NONZERO_QUANTITY, value):
        raise ValueError("must be more than 0")
    return value


def _at_least_a_minute(value: str) -> str:
    if parse_duration(value) < MIN_DURATION:
        raise ValueError("must be at least 1m: a shorter workshop ends before anyone could use it")
    return value


def _in_range(value: datetime) -> datetime:
    value = value if value.tzinfo else value.replace(tzinfo=UTC)  # no zone: UTC, as Kubernetes reads it
    if not EARLIEST <= value < LATEST:
        raise ValueError("must be in the years 2000 to 2199")
    return value


def _annotations(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        prefix, _, name = key.rpartition("/")
        if not ANNOTATION_KEY.match(key) or len(prefix) > 253 or len(name) > 63:
            raise ValueError(
                f"annotation key {key!r} is not valid: an optional DNS prefix and '/', then at most 63 "
                "letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
            )
    # Kubernetes allows 256 KiB of annotations on the Ingress in all; the operator adds its own.
    if sum(len(k) + len(v) for k, v in value.items()) > 64 * 1024:
        raise ValueError("annotations must total at most 64 KiB")
    return value


Quantity = Annotated[
    str,
    Field(
        pattern=QUANTITY_PATTERN,
        max_length=32,
        json_schema_extra=_cel(f"self.matches('{NONZERO_QUANTITY}')", "must be more than 0"),
    ),
    AfterValidator(_nonzero_quantity),
]
_MAX_SECONDS = MAX_DURATION.total_seconds()
#: How long a workshop runs: from a minute to 100 years.
WorkshopDuration = Annotated[
    Duration,
    Field(
        json_schema_extra=_cel(
            f"{DURATION_SECONDS} >= 60.0 && {DURATION_SECONDS} <= {_MAX_SECONDS}",
            "must be from 1m to 36500d (100 years)",
        )
    ),
    AfterValidator(_at_least_a_minute),
]
#: A lead time: up to 100 years, 0 allowed.
LeadTime = Annotated[
    Duration,
    Field(
        json_schema_extra=_cel(f"{DURATION_SECONDS} <= {_MAX_SECONDS}", "must be at most 36500d (100 years)")
    ),
]
StartTime = Annotated[
    datetime,
    Field(
        json_schema_extra=_cel(
            f"self >= timestamp('{EARLIEST:%Y-%m-%dT%H:%M:%SZ}')"
            f" && self < timestamp('{LATEST:%Y-%m-%dT%H:%M:%SZ}')",
            "must be in the years 2000 to 2199",
        )
    ),
    AfterValidator(_in_range),
]
Host = Annotated[
    str,
    Field(
        pattern=DNS_NAME,
        max_length=253,
        json_schema_extra=_cel(f"!self.matches('{NUMERIC_HOST}')", "must be a DNS name, not an IP address"),
    ),
    AfterValidator(_not_an_ip),
]
SINGLE_INSTANCE = "rstudio"


def _not_reserved(value: str) -> str:
    if value == SINGLE_INSTANCE:
        raise ValueError(
            f"{SINGLE_INSTANCE} is reserved: it labels the instance of a workshop without participants"
        )
    return value


def _unique(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("participant names must be unique")
    return value


#: A participant: a DNS label (its path, and part of its children's names and labels).
ParticipantName = Annotated[
    str,
    Field(
        pattern=DNS_LABEL,
        max_length=40,
        json_schema_extra=_cel(
            f"self != '{SINGLE_INSTANCE}'",
            f"{SINGLE_INSTANCE} is reserved: it labels the instance of a workshop without participants",
        ),
    ),
    AfterValidator(_not_reserved),
]

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

    host: Host | None = None
    """Host name of the workshop; each participant gets a path under it. Unset: any host."""
    annotations: Annotated[dict[str, str], AfterValidator(_annotations)] = Field(
        default_factory=dict, max_length=64
    )
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
    duration: WorkshopDuration = "4h"
    """How long the workshop runs from its start, e.g. 4h, 2h30m, 90m; from 1m to 36500d. Editing it moves
    the end."""
    image: str = Field(default="rocker/rstudio:latest", min_length=1, max_length=512, pattern=r"^\S+$")
    """RStudio container image."""
    resources: Resources = Resources()
    """CPU and memory per RStudio instance."""
    storage: Storage = Storage()
    """Home volume per participant."""
    ingress: Ingress = Ingress()
    """External access."""
    start_time: StartTime | None = None
    """When the workshop starts (RFC 3339, years 2000 to 2199). Before it, the instances are provisioned
    and wait in Ready; the duration counts from it. Unset: the workshop starts when it is first Ready."""
    participants: int | None = Field(default=None, ge=1, le=100)
    """Number of participants, named p1, p2, ... Unset (and no participantNames): one instance."""
    participant_names: Annotated[list[ParticipantName], AfterValidator(_unique)] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        json_schema_extra={
            "x-kubernetes-list-type": "set",
        },
    )
    """Participants by name (DNS labels of at most 40 characters, unique, not `rstudio`): one instance
    each, at /<name>/ under the host."""
    expiry_warning: LeadTime = "15m"
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
