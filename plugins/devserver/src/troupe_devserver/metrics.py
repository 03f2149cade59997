"""The devserver operator's own metrics (the core adds reconciles, errors, durations, objects by phase)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from troupe import OperatorMetrics, metric_name, parse_time

#: Seconds from creation to first Running: volume binding and image pulls dominate (GPU images are big).
RUNNING_BUCKETS = (5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)


class ServerCollector(Collector):
    """``troupe_devserver_servers{phase,flavor}``: DevServers by phase and flavor, from the watch cache."""

    def __init__(self, bodies: Callable[[], list[dict[str, Any]]]) -> None:
        self.name = metric_name("devserver", "servers")
        self.bodies = bodies

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.name, "DevServers by phase and flavor.", labels=["phase", "flavor"])
        counts: dict[tuple[str, str], int] = {}
        for body in self.bodies():
            key = (
                (body.get("status") or {}).get("phase") or "",
                (body.get("spec") or {}).get("flavor") or "",
            )
            counts[key] = counts.get(key, 0) + 1
        for (phase, flavor), count in sorted(counts.items()):
            family.add_metric([phase, flavor], count)
        yield family


class DevServerMetrics:
    def __init__(self, base: OperatorMetrics, bodies: Callable[[], list[dict[str, Any]]]) -> None:
        self.time_to_running = base.histogram(
            "time_to_running_seconds", "From creation to first Running.", buckets=RUNNING_BUCKETS
        )
        self.stops = base.counter("stops_total", "Servers stopped, by reason.", ["reason"])
        base.registry.register(ServerCollector(bodies))

    def observe(self, body: dict[str, Any], old: dict[str, Any], new: dict[str, Any], now: datetime) -> None:
        if new.get("phase") == "Running" and old.get("phase") != "Running" and not old.get("runningSince"):
            created = parse_time(body["metadata"].get("creationTimestamp"))
            if created is not None and not old.get("stoppedAt"):
                self.time_to_running.observe(max((now - created).total_seconds(), 0.0))
        if new.get("phase") == "Stopped" and old.get("phase") != "Stopped":
            self.stops.labels(reason=new.get("stoppedBy") or "manual").inc()
