"""A DevServer's status from its spec, flavor, shared claim, observed children and the lifecycle plan."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from troupe import Children, Condition, Manifest, StatusUpdate, isoformat
from troupe_devserver.builders import Flavor, Names
from troupe_devserver.config import Settings
from troupe_devserver.lifecycle import Plan
from troupe_devserver.models import DevServerSpec

STOPPED_BY = {
    "manual": "spec.running is false; set it to true to start the server",
    "lifetime": "its lifetime ended; change the spec (e.g. spec.running false, then true) to start it again",
    "schedule": "its stop schedule fired; it starts at the next scheduled start or on a spec change",
}


def pod_ready(pod: Manifest | None) -> bool:
    if pod is None or pod["metadata"].get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def waiting_for(children: Children, names: Names) -> str:
    """What a server in Creating waits for, as specifically as the observed claim and pod tell."""
    claim = children.named("PersistentVolumeClaim", names.home_claim)
    pod = children.named("Pod", names.pod)
    if children.named("StatefulSet", names.statefulset) is None:
        return "creating the server"
    if claim is not None and (claim.get("status") or {}).get("phase") != "Bound":
        return f"the home claim {names.home_claim} is not bound yet (its StorageClass provisions it)"
    if pod is None:
        return f"waiting for the StatefulSet to create pod {names.pod}"
    pod_status = pod.get("status") or {}
    for c in pod_status.get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("message"):
            return f"pod {names.pod} is not scheduled: {c['message']}"
    for cs in (pod_status.get("initContainerStatuses") or []) + (pod_status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") not in (None, "PodInitializing", "ContainerCreating"):
            detail = f": {waiting['message']}" if waiting.get("message") else ""
            return f"container {cs.get('name')} of pod {names.pod} is waiting, {waiting['reason']}{detail}"
    return f"waiting for pod {names.pod} to be ready (sshd on port 2222)"


def ssh_endpoint(service: Manifest | None, pod: Manifest | None, namespace: str) -> dict[str, Any] | None:
    """How to reach sshd: node address and port for a NodePort, the load balancer, or the cluster DNS name."""
    if service is None:
        return None
    svc_spec = service.get("spec") or {}
    port: dict[str, Any] = next(iter(svc_spec.get("ports") or []), {})
    name = service["metadata"]["name"]
    out: dict[str, Any] = {"service": name, "nodePort": None, "host": None, "port": None, "command": None}
    host: str | None
    if svc_spec.get("type") == "NodePort":
        out["nodePort"] = port.get("nodePort")
        # the node's address; its name when the pod has no address yet (still resolvable in most clusters)
        pod_status, pod_spec = (pod or {}).get("status") or {}, (pod or {}).get("spec") or {}
        host, out["port"] = pod_status.get("hostIP") or pod_spec.get("nodeName"), port.get("nodePort")
    elif svc_spec.get("type") == "LoadBalancer":
        ingress: dict[str, Any] = next(
            iter(((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []), {}
        )
        host, out["port"] = ingress.get("ip") or ingress.get("hostname"), port.get("port")
    else:
        host, out["port"] = f"{name}.{namespace}.svc", port.get("port")
    out["host"] = host
    if host and out["port"]:
        out["command"] = f"ssh -p {out['port']} dev@{host}"
    return out


def _time(value: datetime | None) -> str | None:
    return isoformat(value) if value is not None else None


def devserver_status(
    spec: DevServerSpec,
    body: Manifest,
    flavor: Flavor | None,
    shared_present: bool,
    children: Children,
    plan: Plan,
    settings: Settings,
    now: datetime,
) -> StatusUpdate:
    del settings  # the same shape for every installation today; kept for symmetry with the builders
    meta = body["metadata"]
    namespace, names = meta["namespace"], Names(meta["name"])
    status = body.get("status") or {}
    sts = children.named("StatefulSet", names.statefulset)
    pod = children.named("Pod", names.pod)
    ready = plan.run and pod_ready(pod)

    flavor_missing = flavor is None or not flavor.live
    if flavor is None:
        flavor_message = (
            f"DevServerFlavor {spec.flavor!r} does not exist: create it (kubectl get devserverflavors lists "
            "those there are); the server starts as soon as it does"
        )
    elif not flavor.live:
        flavor_message = (
            f"DevServerFlavor {spec.flavor!r} does not exist (any more): the server keeps running as it was "
            f"built, with flavor {flavor.name!r}, until it does"
        )
    else:
        flavor_message = ""
    shared_missing = bool(spec.shared_volume_claim_name) and not shared_present
    shared_message = (
        f"PersistentVolumeClaim {spec.shared_volume_claim_name!r} does not exist in namespace {namespace}: "
        + (
            "the server waits for it (create a ReadWriteMany claim of that name)"
            if sts is None
            else "the running server keeps the volume it has"
        )
        if shared_missing
        else ""
    )

    if flavor is None:
        phase, reason, message = "Pending", "FlavorNotFound", flavor_message
    elif shared_missing and sts is None:
        phase, reason, message = "Pending", "SharedVolumeMissing", shared_message
    elif not plan.run:
        by = plan.stopped_by or "manual"
        phase, reason, message = "Stopped", "Stopped", f"stopped ({by}): {STOPPED_BY[by]}; the home is kept"
    elif ready:
        phase, reason, message = "Running", "Running", ""
    else:
        phase, reason, message = "Creating", "Creating", waiting_for(children, names)

    expiring = plan.run and plan.warn_at is not None and plan.warn_at <= now
    conditions = [
        Condition(
            type="Ready", status="True" if phase == "Running" else "False", reason=reason, message=message
        ),
        Condition(
            type="FlavorNotFound",
            status="True" if flavor_missing else "False",
            reason="FlavorNotFound" if flavor_missing else "FlavorFound",
            message=flavor_message,
        ),
        Condition(
            type="SharedVolumeMissing",
            status="True" if shared_missing else "False",
            reason="SharedVolumeMissing" if shared_missing else "SharedVolumeFound",
            message=shared_message,
        ),
        Condition(
            type="ExpiringSoon",
            status="True" if expiring else "False",
            reason="LifetimeEnding" if expiring else "NotExpiring",
            message=f"the server stops at {_time(plan.next_stop)} (spec.lifetime); the home is kept"
            if expiring
            else "",
        ),
    ]
    running_since = status.get("runningSince") if phase == "Running" else None
    fields: dict[str, Any] = {
        "flavor": flavor.name if flavor else None,
        "ssh": ssh_endpoint(children.named("Service", names.ssh), pod, namespace),
        "startedAt": _time(plan.started_at),
        "stoppedAt": _time(plan.stopped_at),
        "stoppedBy": plan.stopped_by,
        "stoppedGeneration": plan.stopped_generation,
        "nextStart": _time(plan.next_start),
        "nextStop": _time(plan.next_stop),
        "runningSince": running_since or (isoformat(now) if phase == "Running" else None),
    }
    upcoming = plan.next_event(now)
    return StatusUpdate(
        phase=phase,
        conditions=conditions,
        fields=fields,
        requeue_after=max((upcoming - now).total_seconds(), 1.0) if upcoming else None,
    )
