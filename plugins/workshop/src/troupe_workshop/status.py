"""Pure status: phase, conditions and per-participant detail from spec, observed children and the time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from troupe import Children, Condition, Manifest, StatusUpdate, format_duration, isoformat, parse_time
from troupe_workshop.builders import instances, remaining_for_teardown, url
from troupe_workshop.config import Settings
from troupe_workshop.models import WorkshopSpec
from troupe_workshop.names import Instance
from troupe_workshop.timeline import status_time, terminating, timeline

#: Container waiting reasons that no retry will cure without a spec change.
IMAGE_FAILURES = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
#: While an instance is degraded (crash-looping, stuck), look again this often even without an event.
DEGRADED_RECHECK = 15.0
TEARDOWN_RECHECK = 2.0
STARTING = "starting: each instance's claim binds, then its RStudio becomes ready"


@dataclass(frozen=True)
class Health:
    """One instance as its children show it."""

    ready: bool
    failure: tuple[str, str] | None = None  # (reason, message): unrecoverable, ends in Failed
    degraded: str | None = None  # not ready for too long, or crash-looping
    stuck_since: datetime | None = None  # not ready since (for the restart decision)
    waiting: str = ""  # what it waits for, while not ready
    due: datetime | None = None  # the next health deadline, while not ready (no event marks it passing)


def _pods(children: Children, inst: Instance) -> list[Manifest]:
    return [
        p
        for p in children.of_kind("Pod")
        if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in inst.selector.items())
        and not p["metadata"].get("deletionTimestamp")
    ]


def _waiting_reasons(pod: Manifest) -> set[str]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return {
        s["state"]["waiting"].get("reason", "") for s in statuses if (s.get("state") or {}).get("waiting")
    }


def _pod_ready(pod: Manifest) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def instance_health(children: Children, inst: Instance, settings: Settings, now: datetime) -> Health:
    pvc = children.named("PersistentVolumeClaim", inst.claim)
    dep = children.named("Deployment", inst.deployment) or {}
    bound = pvc is not None and (pvc.get("status") or {}).get("phase") == "Bound"
    available = int((dep.get("status") or {}).get("readyReplicas") or 0) >= 1
    has_service = children.named("Service", inst.service) is not None
    if not bound:
        waiting = f"claim {inst.claim} to bind"
    elif not available:
        waiting = f"RStudio {inst.deployment} to be ready"
    else:
        waiting = f"service {inst.service}"
    deadlines: list[datetime] = []
    if pvc and not bound:
        since = parse_time(pvc["metadata"].get("creationTimestamp"))
        if since:
            deadlines.append(since + settings.fail_after)
        if since and now - since >= settings.fail_after:
            return Health(
                False,
                (
                    "VolumeNotBound",
                    f"PersistentVolumeClaim {inst.claim} is not Bound after "
                    f"{format_duration(settings.fail_after)}: check storage.storageClass and the cluster's "
                    "provisioner",
                ),
                waiting=waiting,
            )
    stuck_since = None
    for pod in _pods(children, inst):
        reasons = _waiting_reasons(pod)
        since = parse_time(
            (pod.get("status") or {}).get("startTime") or pod["metadata"].get("creationTimestamp")
        )
        if since and not _pod_ready(pod):
            deadlines.append(
                since + (settings.fail_after if reasons & IMAGE_FAILURES else settings.restart_after)
            )
        if reasons & IMAGE_FAILURES and since and now - since >= settings.fail_after:
            return Health(
                False,
                (
                    "ImagePullFailed",
                    f"image {pod['spec']['containers'][0]['image']} cannot be pulled "
                    f"({', '.join(sorted(reasons & IMAGE_FAILURES))}) for "
                    f"{format_duration(settings.fail_after)}: fix spec.image or the registry credentials",
                ),
                waiting=waiting,
            )
        if "CrashLoopBackOff" in reasons:
            return Health(False, None, f"RStudio of {inst.name} is crash-looping", since, waiting)
        if not _pod_ready(pod) and since and now - since >= settings.restart_after:
            stuck_since = since
    ready = bound and available and has_service
    if stuck_since is not None and not ready:
        return Health(
            False,
            None,
            f"RStudio of {inst.name} has not been ready since {isoformat(stuck_since)}",
            stuck_since,
            waiting,
        )
    if ready:
        return Health(True)
    return Health(False, waiting=waiting, due=min((d for d in deadlines if d > now), default=None))


def workshop_status(
    spec: WorkshopSpec,
    body: Manifest,
    children: Children,
    settings: Settings,
    now: datetime,
    *,
    deleting: bool = False,
) -> StatusUpdate:
    meta = body["metadata"]
    status: dict[str, Any] = body.get("status") or {}
    name, namespace = meta["name"], meta["namespace"]
    all_ = instances(name, spec)
    fields: dict[str, Any] = {
        "createdAt": meta.get("creationTimestamp"),
        "passwordSecret": all_[0].secret,
        "restarts": status.get("restarts"),
        "startedAt": status.get("startedAt"),
    }

    if terminating(spec, status, now, deleting):
        tl = timeline(spec, status)
        remaining = remaining_for_teardown(children)
        reason = "Deleting" if deleting else "Expired"
        message = (f"tearing down ({', '.join(remaining)} left)" if remaining else "torn down") + (
            f"; claims {'kept' if spec.storage.retain_on_expiry else 'deleted with the workshop'}"
        )
        fields |= {
            "expiresAt": isoformat(tl.expires) if tl.expires else status.get("expiresAt"),
            "terminatingSince": status.get("terminatingSince") or isoformat(now),
            "url": None,
            "participants": [
                {"name": i.name, "phase": "Terminating", "passwordSecret": i.secret} for i in all_
            ],
        }
        return StatusUpdate(
            phase="Terminating",
            conditions=[
                Condition(type="Ready", status="False", reason=reason, message=message),
                Condition(
                    type="ExpiringSoon", status="False", reason=reason, message="the workshop has ended"
                ),
            ],
            fields=fields,
            requeue_after=TEARDOWN_RECHECK if remaining else None,
            delete=not remaining and not deleting,
        )

    health = {i.name: instance_health(children, i, settings, now) for i in all_}
    failures = [h.failure for h in health.values() if h.failure]
    all_ready = all(h.ready for h in health.values())
    first_ready = all_ready and not status.get("startedAt")
    if first_ready and spec.start_time is None:
        fields["startedAt"] = isoformat(now)
    elif spec.start_time is not None:
        fields["startedAt"] = isoformat(spec.start_time)
    tl = timeline(spec, {**status, "startedAt": fields["startedAt"]})
    fields["expiresAt"] = isoformat(tl.expires) if tl.expires else None

    degraded = [h.degraded for h in health.values() if h.degraded]
    restart_due = _restart_due(health, status, settings, now)
    if restart_due:
        fields["restarts"] = int(status.get("restarts") or 0) + 1
        fields["restartedAt"] = isoformat(now)
    elif status.get("restartedAt"):
        fields["restartedAt"] = status["restartedAt"]

    was_up = status.get("phase") in ("Ready", "Running")
    waiting = "waiting for " + ", ".join(h.waiting for h in health.values() if not h.ready)
    if failures:
        phase = "Failed"
        reason, message = failures[0]
    elif all_ready or (was_up and fields["startedAt"]):
        phase = "Running" if tl.started(now) else "Ready"
        if not all_ready:
            reason, message = "InstancesNotReady", waiting
        elif phase == "Running":
            reason, message = "Running", f"open until {fields['expiresAt']}"
        else:
            reason, message = "WaitingForStart", f"provisioned; starts at {isoformat(spec.start_time or now)}"
    else:
        # One message for the whole start, not one per step (claim bound, then RStudio ready): each would
        # be a status write of every Workshop. A step overdue shows as Degraded, or Failed, with the detail.
        phase = "Creating" if children else "Pending"
        reason, message = "Creating", STARTING

    fields["participants"] = [
        {
            "name": i.name,
            "url": url(spec, namespace, i),
            "phase": phase if health[i.name].ready or phase == "Failed" else "Creating",
            "passwordSecret": i.secret,
        }
        for i in all_
    ]
    fields["url"] = url(spec, namespace, all_[0]) if phase in ("Ready", "Running") else None

    conditions = [
        Condition(
            type="Ready",
            status="True" if phase in ("Ready", "Running") and all_ready else "False",
            reason=reason,
            message=message,
        ),
        Condition(
            type="Degraded",
            status="True" if degraded else "False",
            reason="InstanceUnhealthy" if degraded else "Healthy",
            message="; ".join(degraded) + (" (restarting it)" if restart_due else "") if degraded else "",
        ),
        Condition(
            type="ExpiringSoon",
            status="True" if tl.expiring(now) else "False",
            reason="ExpiringSoon" if tl.expiring(now) else "NotExpiring",
            message=f"the workshop ends at {fields['expiresAt']}; save your work" if tl.expiring(now) else "",
        ),
    ]
    # No event marks a health deadline passing (a claim still unbound after fail_after): look again then.
    waits = [t for t in (tl.next_event(now), DEGRADED_RECHECK if degraded else None) if t is not None]
    waits += [(h.due - now).total_seconds() for h in health.values() if h.due is not None]
    return StatusUpdate(
        phase=phase, conditions=conditions, fields=fields, requeue_after=min(waits) if waits else None
    )


def _restart_due(
    health: dict[str, Health], status: dict[str, Any], settings: Settings, now: datetime
) -> bool:
    """A stuck instance is restarted once per ``restart_after``: a new pod, not a restart storm."""
    if not any(h.stuck_since is not None for h in health.values()):
        return False
    last = status_time(status.get("restartedAt"))
    return last is None or now - last >= settings.restart_after
