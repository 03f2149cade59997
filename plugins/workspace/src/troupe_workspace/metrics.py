"""The workspace operator's own metrics (the core counts workspaces by phase: troupe_workspace_objects)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from troupe import OperatorMetrics, metric_name
from troupe_workspace.status import provisioning_seconds

#: Seconds from admission to Ready: disk syncs dominate, minutes to an hour.
PROVISIONING_BUCKETS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)


def queued(status: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Queued" and c.get("status") == "True" for c in status.get("conditions") or []
    )


class QueueCollector(Collector):
    """``troupe_workspace_queue_length``: workspaces waiting for a provisioning slot."""

    def __init__(self, statuses: Callable[[], list[dict[str, Any]]]) -> None:
        self.name = metric_name("workspace", "queue_length")
        self.statuses = statuses

    def collect(self) -> Iterator[GaugeMetricFamily]:
        count = sum(1 for s in self.statuses() if queued(s))
        yield GaugeMetricFamily(self.name, "Workspaces waiting for a provisioning slot.", value=count)


def failed_components(status: dict[str, Any]) -> set[tuple[str, str]]:
    resources = status.get("resourceStatus") or {}
    vms = {
        ("vm", v["name"])
        for v in resources.get("virtualMachines") or []
        if v.get("phase") in ("Failed", "DataVolumeError")
    }
    return vms | {
        ("container", c["name"]) for c in resources.get("containers") or [] if c.get("status") == "Failed"
    }


class WorkspaceMetrics:
    def __init__(self, base: OperatorMetrics, statuses: Callable[[], list[dict[str, Any]]]) -> None:
        self.provisioning = base.histogram(
            "provisioning_duration_seconds", "From admission to Ready.", buckets=PROVISIONING_BUCKETS
        )
        self.failures = base.counter(
            "component_failures_total", "VMs and containers that turned Failed.", labels=("component",)
        )
        base.registry.register(QueueCollector(statuses))

    def observe(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        seconds = provisioning_seconds(old, new)
        if seconds is not None:
            self.provisioning.observe(seconds)
        for component, _ in failed_components(new) - failed_components(old):
            self.failures.labels(component=component).inc()
