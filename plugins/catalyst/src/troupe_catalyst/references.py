"""What the Project and Environment plugins share: the operator and API group both kinds are declared in,
and an Environment's reference to its Project (pure functions of a body)."""

from __future__ import annotations

from functools import partial

from troupe import KindSpec, Manifest
from troupe_catalyst.builders import project_namespace

GROUP, VERSION = "catalyst.catalyst.dev", "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
OPERATOR = "catalyst"

#: A KindSpec of the catalyst operator: ``troupe run catalyst`` runs every kind declared with it.
catalyst_kind = partial(
    KindSpec, operator=OPERATOR, group=GROUP, version=VERSION, categories=("troupe", OPERATOR)
)


def project_of(body: Manifest) -> list[tuple[str | None, str]]:
    """The (namespace, name) of the Project an Environment names, none without ``spec.projectRef.name``."""
    ref = (body.get("spec") or {}).get("projectRef") or {}
    return [(project_namespace(body), str(ref["name"]))] if ref.get("name") else []
