"""The workshop operator's own metrics (the core adds reconciles, errors, durations, objects by phase)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from troupe import OperatorMetrics, metric_name, parse_time

#: Seconds from creation to first Ready: image pulls and volume binding dominate.
READY_BUCKETS = (5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
UP = ("Ready", "Running")


class ParticipantCollector(Collector):
    """``troupe_workshop_participants``: participants of workshops that are not being torn down."""

    def __init__(self, statuses: Callable[[], list[dict[str, Any]]]) -> None:
        self.name = metric_name("workshop", "participants")
        self.statuses = statuses

    def collect(self) -> Iterator[GaugeMetricFamily]:
        total = sum(
            len(s.get("participants") or [])
            for s in self.statuses()
            if s.get("phase") not in ("Terminating", "Failed")
        )
        yield GaugeMetricFamily(self.name, "Participants of live workshops.", value=total)


class WorkshopMetrics:
    def __init__(self, base: OperatorMetrics, statuses: Callable[[], list[dict[str, Any]]]) -> None:
        self.time_to_ready = base.histogram(
            "time_to_ready_seconds", "From creation to first Ready.", buckets=READY_BUCKETS
        )
        self.expirations = base.counter("expirations_total", "Workshops that reached their end time.")
        base.registry.register(ParticipantCollector(statuses))

    def observe(self, body: dict[str, Any], old: dict[str, Any], new: dict[str, Any], now: datetime) -> None:
        if new.get("phase") in UP and old.get("phase") not in UP:
            created = parse_time(body["metadata"].get("creationTimestamp"))
            if created is not None and not old.get("startedAt"):
                self.time_to_ready.observe(max((now - created).total_seconds(), 0.0))
        if (
            new.get("phase") == "Terminating"
            and old.get("phase") != "Terminating"
            and not body["metadata"].get("deletionTimestamp")
        ):
            self.expirations.inc()
