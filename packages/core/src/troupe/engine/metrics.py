"""Prometheus metrics named ``troupe_<operator>_<name>_<unit>`` with small, bounded label sets."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


def metric_name(operator: str, name: str) -> str:
    return f"troupe_{operator}_{name}"


class OperatorMetrics:
    """The metrics every operator has; plugins add their own with :meth:`counter` and friends."""

    def __init__(self, operator: str, registry: CollectorRegistry) -> None:
        self.operator = operator
        self.registry = registry
        self.reconciles = self.counter(
            "reconciles_total",
            "Reconciles by kind and result (applied, unchanged, retrying, failed, error).",
            ("kind", "result"),
        )
        self.errors = self.counter("reconcile_errors_total", "Reconciles that raised, by kind.", ("kind",))
        self.duration = self.histogram(
            "reconcile_duration_seconds", "Time of one reconcile, by kind.", ("kind",)
        )
        self.enqueues = self.counter(
            "enqueues_total",
            "Why objects were queued for a reconcile (object, child, related, requeue, ...) and what came"
            " of it: a run, folded into a pending or running one (pending, rerun, folded), or ignored.",
            ("reason", "outcome"),
        )
        self.writes = self.counter(
            "api_writes_total",
            "Writes to the API server, by verb (create, apply, patch, delete, status, event).",
            ("verb",),
        )

    def counter(self, name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
        return Counter(metric_name(self.operator, name), doc, tuple(labels), registry=self.registry)

    def histogram(
        self, name: str, doc: str, labels: Iterable[str] = (), buckets: Iterable[float] | None = None
    ) -> Histogram:
        full = metric_name(self.operator, name)
        if buckets is None:
            return Histogram(full, doc, tuple(labels), registry=self.registry)
        return Histogram(full, doc, tuple(labels), registry=self.registry, buckets=tuple(buckets))


PhaseCounts = Callable[[], dict[tuple[str, str], int]]


class PhaseCollector(Collector):
    """``troupe_<operator>_objects{kind,phase}``, counted from the watch cache at scrape time.

    Counting on scrape rather than on each reconcile keeps the hot path free of it, and a phase that
    emptied disappears instead of lingering with its last value.
    """

    def __init__(self, operator: str, counts: PhaseCounts) -> None:
        self.name = metric_name(operator, "objects")
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.name, "Objects by kind and phase.", labels=("kind", "phase"))
        for (kind, phase), count in sorted(self.counts().items()):
            family.add_metric((kind, phase), count)
        yield family
