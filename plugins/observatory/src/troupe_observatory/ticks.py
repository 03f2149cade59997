"""Which schedule tick, if any, starts a run now: catch-up, starting deadline, concurrency policy.

Definitions (see the README): the ticks *due* are those after ``status.lastScheduleTime`` (or the
object's creation) up to now. The newest due tick is *on time* when it is at most :data:`LATE_AFTER` old
and within ``startingDeadlineSeconds``; every other due tick was *missed* (the operator was away, or a
Forbid run held it back). Ticks older than ``startingDeadlineSeconds`` never run. ``catchUp.policy``
decides the missed ones: Skip runs none, RunOnce runs one run for all of them (none if a tick is on time:
that run covers them), RunAll runs each of the most recent ``limit`` of them, oldest first, one per
reconcile. Ticks that pass while suspended are skipped, not missed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from troupe import Cron
from troupe_observatory.models import ObservatorySpec

#: How late a tick may be seen and still count as on time (reconciles normally run within a second).
LATE_AFTER = timedelta(seconds=60)
#: How soon to come back when RunAll has more missed ticks to run.
BACKLOG_DELAY = 1.0


@dataclass(frozen=True)
class TickDecision:
    start: datetime | None = None
    """The tick a run starts for now."""
    last_schedule: datetime | None = None
    """The new status.lastScheduleTime (the newest tick dealt with)."""
    skipped: int = 0
    """Due ticks dropped by this decision."""
    note: str | None = None
    """Why ticks were skipped or held back, for the Scheduled condition."""
    requeue_after: float | None = None


def decide(
    spec: ObservatorySpec,
    cron: Cron,
    *,
    last: datetime | None,
    created: datetime,
    now: datetime,
    busy: bool,
    resumed: bool,
) -> TickDecision:
    """The tick to start a run for (if any) given the due ticks; ``busy``: a run is still active."""
    catch_up = spec.catch_up
    policy = catch_up.policy if catch_up else "Skip"
    limit = catch_up.limit if catch_up and policy == "RunAll" else 1
    ticks, total = cron.ticks_between(last or created, now, limit + 1)
    if not ticks:
        return TickDecision(last_schedule=last)
    latest = ticks[-1]
    if spec.suspend or resumed:
        return TickDecision(
            last_schedule=latest, skipped=total, note=f"{_ticks(total)} skipped while suspended"
        )

    def expired(tick: datetime) -> bool:
        deadline = spec.starting_deadline_seconds
        return deadline is not None and (now - tick).total_seconds() > deadline

    on_time = latest if now - latest <= LATE_AFTER and not expired(latest) else None
    missed = [t for t in ticks if t != on_time and not expired(t)]
    candidates: list[datetime]
    if policy == "RunAll":
        candidates = [*missed[-limit:], *([on_time] if on_time else [])]
    elif policy == "RunOnce":
        candidates = [on_time] if on_time else missed[-1:]
    else:
        candidates = [on_time] if on_time else []
    if not candidates:
        note = f"{_ticks(total)} missed (last {latest.isoformat()}) and skipped (catchUp {policy})"
        return TickDecision(last_schedule=latest, skipped=total, note=note)
    target = candidates[0]
    if busy and spec.concurrency_policy == "Forbid":
        return TickDecision(
            last_schedule=last, note=f"tick {target.isoformat()} waits for the active run (Forbid)"
        )
    if policy == "RunAll":
        dropped = total - len(candidates)
        more = len(candidates) > 1
        return TickDecision(
            start=target,
            last_schedule=target,
            skipped=dropped,
            note=f"{_ticks(dropped)} beyond catchUp.limit skipped" if dropped else None,
            requeue_after=BACKLOG_DELAY if more else None,
        )
    dropped = total - 1
    done: str = "one run for them" if policy == "RunOnce" else "skipped"
    summary = f"{_ticks(dropped)} missed, {done} (catchUp {policy})" if dropped else None
    return TickDecision(start=target, last_schedule=latest, skipped=dropped, note=summary)


def _ticks(count: int) -> str:
    return f"{count}{'+' if count >= 10_000 else ''} tick{'s' if count != 1 else ''}"
