"""Names the operator derives: the environment's namespace, its release, its build Job.

The namespace is ``<team>-<project>-<environment>`` (the seed's hierarchy, readable in ``kubectl get ns``).
When that is not a valid DNS-1123 label of at most 63 characters, it is lower-cased, every run of other
characters becomes ``-``, it is cut to 54 characters (trailing ``-`` dropped) and ``-`` plus the first 8
hex digits of the SHA-256 of ``<team>/<project>/<environment>`` is appended: the same input always gives
the same name, and two inputs that clean or cut to the same prefix still differ in the hash. Two different
triples that join to the same plain name (``a-b``/``c`` and ``a``/``b-c``) meet: the core's ownership rule
then refuses the second (``NameConflict``) instead of handing it the first one's namespace.
"""

from __future__ import annotations

import hashlib
import re

from troupe import dns1123_label

MAX_NAME = 63
HASH_LENGTH = 8
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_INVALID = re.compile(r"[^a-z0-9]+")


def namespace_name(team: str, project: str, environment: str) -> str:
    """The environment's namespace (rule in the module docstring and the README)."""
    plain = f"{team}-{project}-{environment}"
    if len(plain) <= MAX_NAME and _LABEL.match(plain):
        return plain
    digest = hashlib.sha256(f"{team}/{project}/{environment}".encode()).hexdigest()[:HASH_LENGTH]
    cleaned = _INVALID.sub("-", plain.lower()).strip("-")
    cut = cleaned[: MAX_NAME - HASH_LENGTH - 1].rstrip("-")
    return f"{cut}-{digest}" if cut else digest


def release_name(environment: str) -> str:
    """The helm release: the Environment's name, within helm's 53 characters."""
    return dns1123_label(environment, max_length=53)


def build_job_name(commit: str) -> str:
    """One build Job per commit (a rebuild of the same commit finds the Job of the first)."""
    return dns1123_label("build", commit[:40].lower())
