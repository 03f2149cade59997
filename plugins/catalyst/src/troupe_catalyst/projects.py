"""How many Environments name each Project (a Project's ``status.environments``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def project_counts(references: Iterable[tuple[str | None, str]]) -> dict[tuple[str | None, str], int]:
    """``references``: the (namespace, name) of the Project of each Environment."""
    return dict(Counter(references))
