"""Quantities in the API server's canonical spelling (what it stores for a Deployment's resources)."""

from __future__ import annotations

import pytest

from troupe_workspace.quantities import canonical


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2048Mi", "2Gi"),
        ("1.5Gi", "1536Mi"),
        ("100Mi", "100Mi"),
        ("1Ki", "1Ki"),
        ("0.5", "500m"),
        ("1000m", "1"),
        ("384m", "384m"),
        ("1.5", "1500m"),
        ("2G", "2G"),
        ("1500M", "1500M"),
        ("1e3", "1k"),
        ("128974848", "128974848"),
        ("2", "2"),
    ],
)
def test_canonical(given: str, stored: str) -> None:
    assert canonical(given) == stored
