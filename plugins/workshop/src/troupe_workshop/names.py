"""Child names of a Workshop: no two (workshop, participant) pairs ever get the same name of a kind.

Every name is a DNS-1123 label of at most 63 characters; a Service's also starts with a letter
(DNS-1035). A kind adds a fixed suffix to an instance's stem ("" for the Deployment, Service and
Ingress, "-home" for the claim, "-password" for the Secret). Three forms, told apart by their dashes:

- single instance, plain:  ``<workshop><suffix>``                 intro, intro-home, intro-password
- participant, plain:      ``<workshop>--<participant><suffix>``  intro--p1, intro--alice-home
- anything else, hashed:   ``<readable>---<digest><suffix>``      team-x---0c3f6a51-home

A form is plain only when the workshop and participant are DNS labels holding no "--" and the name fits
(and, for a Service, starts with a letter). So a plain single-instance name holds no "--", a plain
participant name exactly one (the separator: both sides end and start alphanumeric), and only a hashed
name holds "---". With the suffix fixed per kind, a plain name reads back to exactly one pair, and a
hashed one to its digest of the pair itself: ``team.x`` and ``team-x``, workshop ``w-a`` and participant
``a`` of workshop ``w``, or a name spelled like another's hash never meet. Only a collision of the
32-bit digest could, and the core's ownership rule turns that into a ``NameConflict``, not a takeover.

The core's ``troupe.dns1123_label`` is not used for these: it drops an absent participant (so a single
instance and a participant cannot be told apart) and its hashed form ``<name>-<digest>`` can be spelled by
a plain name. Label values (selectors) go through ``troupe.label_value``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from troupe import label_value
from troupe_workshop.models import SINGLE_INSTANCE

MAX_NAME = 63
DIGEST = 8
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_INVALID = re.compile(r"[^a-z0-9-]+")

WORKSHOP_LABEL = "orchestra.io/workshop"
PARTICIPANT_LABEL = "orchestra.io/participant"


def _plain_part(part: str) -> bool:
    return bool(_LABEL.match(part)) and "--" not in part


def _digest(workshop: str, participant: str | None) -> str:
    """8 hex digits of the pair; '/' appears in neither part, so ``w`` and ``w/p`` cannot be confused."""
    key = workshop if participant is None else f"{workshop}/{participant}"
    return hashlib.sha256(key.encode()).hexdigest()[:DIGEST]


def child_name(workshop: str, participant: str | None, suffix: str = "", *, service: bool = False) -> str:
    """The name of one kind of child (``suffix`` fixed per kind) of one instance; see the module doc."""
    parts = [workshop] if participant is None else [workshop, participant]
    plain = "--".join(parts) + suffix
    if all(_plain_part(p) for p in parts) and len(plain) <= MAX_NAME and (not service or plain[0].isalpha()):
        return plain
    readable = _INVALID.sub("-", "-".join(parts).lower()).strip("-")
    if service and not readable[:1].isalpha():
        readable = f"ws-{readable}"
    readable = readable[: MAX_NAME - len(suffix) - DIGEST - 3].rstrip("-")
    return f"{readable}---{_digest(workshop, participant)}{suffix}"


@dataclass(frozen=True)
class Instance:
    """The names of one participant's RStudio instance and its children."""

    workshop: str
    participant: str | None  # None: the single instance of a workshop without participants

    @property
    def name(self) -> str:
        return self.participant or SINGLE_INSTANCE

    @property
    def deployment(self) -> str:
        return child_name(self.workshop, self.participant)

    @property
    def service(self) -> str:
        return child_name(self.workshop, self.participant, service=True)

    @property
    def claim(self) -> str:
        return child_name(self.workshop, self.participant, "-home")

    @property
    def secret(self) -> str:
        return child_name(self.workshop, self.participant, "-password")

    @property
    def path(self) -> str:
        return f"/{self.participant}/" if self.participant else "/"

    @property
    def selector(self) -> dict[str, str]:
        """Pod labels of this instance alone: distinct workshops have distinct label values."""
        return {WORKSHOP_LABEL: label_value(self.workshop), PARTICIPANT_LABEL: label_value(self.name)}


def ingress_name(workshop: str) -> str:
    return child_name(workshop, None)
