"""Every plugins/<name>/Dockerfile follows the image conventions the build and the smoke test rely on
(a new operator copies plugins/workshop/Dockerfile and renames; this says what it must keep)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(ROOT.glob("plugins/*/Dockerfile"))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_conventions(dockerfile: Path) -> None:
    name = dockerfile.parent.name
    text = dockerfile.read_text()
    assert text.count("ARG BASE_IMAGE=python:3.12-slim") == 1  # podman builds here pass their own base
    assert f"--package troupe-{name}" in text  # only this operator and the core, from uv.lock
    assert "uv sync --frozen --no-dev --no-editable" in text
    assert "FROM scratch" in text and "COPY --from=runtime / /" in text  # deletions really remove bytes
    assert re.search(r"rm -rf [^;]*/usr/bin/apt\*[^;]*/var/lib/dpkg", text), "apt and dpkg must go"
    assert "troupe:x:65532:65532:" in text  # kopf's peer id needs a passwd entry for the user
    assert re.search(r"^USER 65532:65532$", text, re.M)  # the chart's runAsUser
    assert re.findall(r"^ENTRYPOINT (.*)$", text, re.M) == [f'["troupe", "run", "{name}"]']
    for label in ("source", "version", "revision"):
        assert f"org.opencontainers.image.{label}=" in text
