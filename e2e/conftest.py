"""e2e fixtures: see e2e/harness.py (cluster, namespace, helm, run_operator), e2e/catalyst_fixtures.py
(registry, git_server) and docs/cluster.md."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: needs a Kubernetes API server (see docs/cluster.md)")
    # `make e2e` loads the harness with `-p harness` (so plugins/*/tests see the fixtures too);
    # a plain `pytest e2e` gets it here.
    if not config.pluginmanager.has_plugin("harness"):
        import harness

        config.pluginmanager.register(harness, "harness")
    # the loopback registry and git server of the catalyst tests (no cluster needed)
    if not config.pluginmanager.has_plugin("catalyst_fixtures"):
        import catalyst_fixtures

        config.pluginmanager.register(catalyst_fixtures, "catalyst_fixtures")
