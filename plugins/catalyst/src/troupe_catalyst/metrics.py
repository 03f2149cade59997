"""The catalyst operator's own metrics (the core adds reconciles, errors, durations and
``troupe_catalyst_objects{kind,phase}``: Environments by phase)."""

from __future__ import annotations

from typing import Any

from troupe import OperatorMetrics, parse_time

BUILD_BUCKETS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
DEPLOY_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600)


def _seconds(record: dict[str, Any]) -> float | None:
    start, end = parse_time(record.get("startedAt")), parse_time(record.get("finishedAt"))
    return (end - start).total_seconds() if start and end else None


class CatalystMetrics:
    def __init__(self, base: OperatorMetrics) -> None:
        self.build = base.histogram(
            "build_duration_seconds", "Build Jobs, from start to end, by result.", ("result",), BUILD_BUCKETS
        )
        self.deploy = base.histogram(
            "deploy_duration_seconds",
            "Deploy steps (git fetch, helm, ready wait), by result.",
            ("result",),
            DEPLOY_BUCKETS,
        )
        self.helm_failures = base.counter(
            "helm_failures_total", "Failed deploy steps, by reason.", ("reason",)
        )

    def deployed(self, seconds: float, error: str | None) -> None:
        """A deploy step ended (measured by the step itself: a status may never show it Running)."""
        self.deploy.labels(result="failure" if error else "success").observe(max(seconds, 0.0))
        if error:
            head, sep, _ = error.partition(": ")
            self.helm_failures.labels(reason=head if sep and head.isalnum() else "Other").inc()

    def observe(self, body: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> None:
        old_build, new_build = old.get("build") or {}, new.get("build") or {}
        if new_build.get("phase") in ("Succeeded", "Failed") and new_build != old_build:
            seconds = _seconds(new_build)
            if seconds is not None:
                self.build.labels(result=new_build["phase"].lower()).observe(max(seconds, 0.0))
