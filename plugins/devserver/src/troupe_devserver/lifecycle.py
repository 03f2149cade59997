"""Whether a DevServer should run now: spec.running, its lifetime and its start/stop schedule.

Pure and derived from the spec, the recorded status and the reconcile's clock reading, so the builders
(replicas) and the status hook (phase, nextStop) always agree, and a restarted operator decides the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from troupe import Cron, parse_duration, parse_time
from troupe_devserver.models import DevServerSpec, StopReason

#: The ExpiringSoon warning comes this long before a lifetime stop (at most half the lifetime).
WARN_BEFORE = timedelta(minutes=15)


@dataclass(frozen=True)
class Plan:
    """What the server should be doing at ``now``, and the facts the status records about it."""

    run: bool
    started_at: datetime | None
    stopped_at: datetime | None = None
    stopped_by: StopReason | None = None
    stopped_generation: int | None = None
    next_stop: datetime | None = None
    next_stop_reason: StopReason | None = None
    next_start: datetime | None = None
    warn_at: datetime | None = None

    def next_event(self, now: datetime) -> datetime | None:
        """The next instant at which the plan changes by itself (a reconcile is due then)."""
        times = [t for t in (self.warn_at, self.next_stop, self.next_start) if t is not None and t > now]
        return min(times, default=None)


def crons(spec: DevServerSpec) -> tuple[Cron | None, Cron | None]:
    """The start and stop schedules (the model has already refused unparsable lines)."""
    sched = spec.schedule
    if sched is None:
        return None, None
    start = Cron.parse(sched.start, sched.time_zone) if sched.start else None
    stop = Cron.parse(sched.stop, sched.time_zone) if sched.stop else None
    return start, stop


def plan(
    spec: DevServerSpec, status: dict[str, Any], generation: int, now: datetime, *, waiting: bool = False
) -> Plan:
    """``waiting``: nothing can be built yet (no flavor, no shared claim); the clock has not started."""
    started = parse_time(status.get("startedAt"))
    stopped_at = parse_time(status.get("stoppedAt"))
    stopped_by = status.get("stoppedBy")
    start_cron, stop_cron = crons(spec)
    if not spec.running:
        since = stopped_at if stopped_by == "manual" and stopped_at else now
        return Plan(run=False, started_at=started, stopped_at=since, stopped_by="manual")
    if waiting and started is None:
        # a lifetime counts from the server's start, not from days spent waiting for its flavor
        return Plan(run=True, started_at=None)
    if stopped_by in ("lifetime", "schedule") and status.get("stoppedGeneration") == generation:
        # Stopped automatically: it stays stopped until a scheduled start or a change of the spec.
        wake = start_cron.next_after(stopped_at) if start_cron and stopped_at else None
        if wake is None or wake > now:
            return Plan(
                run=False,
                started_at=started,
                stopped_at=stopped_at,
                stopped_by=stopped_by,
                stopped_generation=generation,
                next_start=wake,
            )
    if stopped_by is not None or started is None:
        started = now  # a fresh start: the lifetime and the stop schedule count from here
    stops: list[tuple[datetime, StopReason]] = []
    if spec.lifetime:
        stops.append((started + parse_duration(spec.lifetime), "lifetime"))
    tick = stop_cron.next_after(started) if stop_cron else None
    if tick is not None:
        stops.append((tick, "schedule"))
    if not stops:
        return Plan(run=True, started_at=started)
    due, reason = min(stops)
    if due <= now:
        wake = start_cron.next_after(now) if start_cron else None
        return Plan(
            run=False,
            started_at=started,
            stopped_at=now,
            stopped_by=reason,
            stopped_generation=generation,
            next_start=wake,
        )
    warn_at = None
    if reason == "lifetime" and spec.lifetime:
        warn_at = due - min(WARN_BEFORE, parse_duration(spec.lifetime) / 2)
    return Plan(run=True, started_at=started, next_stop=due, next_stop_reason=reason, warn_at=warn_at)
