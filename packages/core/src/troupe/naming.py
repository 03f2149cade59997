"""Names and labels: DNS-1123 names with the 63-character truncate-and-hash rule, standard labels."""

from __future__ import annotations

import hashlib
import re

MAX_LABEL = 63
MAX_SUBDOMAIN = 253
_INVALID = re.compile(r"[^a-z0-9-]+")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

MANAGED_BY = "app.kubernetes.io/managed-by"
NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
PART_OF = "app.kubernetes.io/part-of"


def is_dns1123_label(value: str) -> bool:
    return len(value) <= MAX_LABEL and bool(_LABEL.match(value))


def dns1123_label(*parts: str, max_length: int = MAX_LABEL) -> str:
    """Join ``parts`` with '-' into a valid DNS-1123 label.

    Lower-cases and replaces invalid characters; when the result is too long it is cut and ends in an
    8-hex-digit hash of the full name, so two long names that share a prefix still differ.
    """
    raw = "-".join(p for p in parts if p)
    name = _INVALID.sub("-", raw.lower()).strip("-") or "x"
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{name[: max_length - 9].rstrip('-')}-{digest}"


def managed_by(operator: str) -> str:
    """The ``app.kubernetes.io/managed-by`` value (and field manager) of an operator."""
    return f"troupe-{operator}"


def standard_labels(operator: str, kind: str, instance: str, component: str | None = None) -> dict[str, str]:
    """The ``app.kubernetes.io/*`` labels every child carries; values are valid label values."""
    labels = {
        MANAGED_BY: managed_by(operator),
        NAME: dns1123_label(kind),
        INSTANCE: dns1123_label(instance),
        PART_OF: "troupe",
    }
    if component:
        labels[COMPONENT] = dns1123_label(component)
    return labels
