"""Names and labels: DNS-1123 names with the 63-character truncate-and-hash rule, standard labels."""

from __future__ import annotations

import hashlib
import re

MAX_LABEL = 63
_INVALID = re.compile(r"[^a-z0-9-]+")
_FRAGMENT = re.compile(r"^[a-z0-9-]+$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_INVALID_VALUE = re.compile(r"[^-A-Za-z0-9_.]+")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

MANAGED_BY = "app.kubernetes.io/managed-by"
NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
PART_OF = "app.kubernetes.io/part-of"


def is_dns1123_label(value: str) -> bool:
    return len(value) <= MAX_LABEL and bool(_LABEL.match(value))


def dns1123_label(*parts: str, max_length: int = MAX_LABEL) -> str:
    """Join ``parts`` with '-' into a valid DNS-1123 label, injectively for a call site's fixed parts.

    The plain join is returned only when it can be read back: every part is already lower-case DNS
    characters, no part but the first holds a '-', and the join fits. Any other input (a dot or capital to
    replace, a second part holding a dash, a name too long) is cleaned, cut, and ends in an 8-hex-digit
    hash of the parts themselves, so ``team.x`` and ``team-x``, or (``pc``, ``x-1-y``) and (``pc-1-x``,
    ``y``), never meet. Empty parts are dropped: a call site that leaves a part out must keep the others
    apart itself. What stays possible is a deliberate hash collision; the core's ownership rule turns that
    into a ``NameConflict`` instead of a takeover.
    """
    kept = [p for p in parts if p]
    raw = "-".join(kept)
    plain = (
        all(_FRAGMENT.match(p) for p in kept)
        and not any("-" in p for p in kept[1:])
        and is_dns1123_label(raw)
        and len(raw) <= max_length
    )
    if plain:
        return raw
    digest = hashlib.sha256("/".join(kept).encode()).hexdigest()[:8]
    name = _INVALID.sub("-", raw.lower()).strip("-")
    name = name[: max_length - 9].rstrip("-")
    return f"{name}-{digest}" if name else digest


def label_value(text: str) -> str:
    """``text`` as a label value: unchanged when valid, else cleaned and cut, ending in a hash of it."""
    if len(text) <= MAX_LABEL and _LABEL_VALUE.match(text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    cleaned = _INVALID_VALUE.sub("-", text)[: MAX_LABEL - 9].strip("-_.")
    return f"{cleaned}-{digest}" if cleaned else digest


def managed_by(operator: str) -> str:
    """The ``app.kubernetes.io/managed-by`` value (and field manager) of an operator."""
    return f"troupe-{operator}"


def standard_labels(operator: str, kind: str, instance: str, component: str | None = None) -> dict[str, str]:
    """The ``app.kubernetes.io/*`` labels every child carries; values are valid label values."""
    labels = {
        MANAGED_BY: managed_by(operator),
        NAME: label_value(kind.lower()),
        INSTANCE: label_value(instance),
        PART_OF: "troupe",
    }
    if component:
        labels[COMPONENT] = label_value(component)
    return labels
