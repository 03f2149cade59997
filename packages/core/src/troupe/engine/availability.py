"""Which optional APIs the cluster serves: CRDs of other projects that may be installed, or not, or later."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from troupe.engine.client import Kube, NotFound
from troupe.kinds import ChildKind, KindSpec, RelatedKind

logger = logging.getLogger(__name__)

OptionalKind = ChildKind | RelatedKind


def optional_kinds(kinds: Iterable[KindSpec]) -> list[OptionalKind]:
    found: dict[tuple[str, str], OptionalKind] = {}
    for kind in kinds:
        for dep in kind.watched:
            if dep.optional:
                found.setdefault((dep.api_version, dep.kind), dep)
    return list(found.values())


def crd_name(dep: OptionalKind) -> str:
    return f"{dep.plural}.{dep.group}"


def missing_message(dep: OptionalKind) -> str:
    hint = f": {dep.missing_hint}" if dep.missing_hint else ""
    return f"{dep.api_version} {dep.kind} is not served{hint}"


class Availability:
    """Served or not, per optional kind; every other kind is taken as served (the chart installs it)."""

    def __init__(self) -> None:
        self._missing: set[str] = set()

    def served(self, dep: OptionalKind) -> bool:
        return not dep.optional or crd_name(dep) not in self._missing

    async def discover(self, kube: Kube, deps: Iterable[OptionalKind]) -> None:
        """Ask API discovery once, at start-up; the CRD watch keeps it current afterwards."""
        for dep in deps:
            try:
                found = await kube.request("GET", f"/apis/{dep.api_version}")
            except NotFound:
                found = {}
            served = any(r.get("name") == dep.plural for r in found.get("resources", []))
            self.set(crd_name(dep), served)

    def set(self, name: str, served: bool) -> bool:
        """Record a CRD's state; True when it changed."""
        before = name not in self._missing
        if served:
            self._missing.discard(name)
        else:
            self._missing.add(name)
        if before != served:
            logger.info("%s is %s", name, "served now" if served else "not served")
        return before != served


def crd_serves(crd: dict[str, Any], version: str) -> bool:
    """An Established CRD serving ``version``."""
    status = crd.get("status") or {}
    established = any(
        c.get("type") == "Established" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    versions = (crd.get("spec") or {}).get("versions") or []
    return established and any(v.get("name") == version and v.get("served") for v in versions)
