"""A third-party extension: label every child with its owner's cost center, for chargeback reports."""

from __future__ import annotations

from typing import Any

from troupe import Manifest, ReconcileContext, hookimpl

ANNOTATION = "example.troupe.dev/cost-center"
LABEL = "example.troupe.dev/cost-center"


@hookimpl
def troupe_mutate_resource(ctx: ReconcileContext[Any], resource: Manifest) -> None:
    cost_center = (ctx.body["metadata"].get("annotations") or {}).get(ANNOTATION)
    if cost_center:
        resource["metadata"].setdefault("labels", {})[LABEL] = cost_center
