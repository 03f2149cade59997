"""Task pods: the manifest of one attempt, and what an observed pod says about it."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from troupe import OWNER_ANNOTATION, RETAIN_ANNOTATION, Manifest, dns1123_label, parse_duration
from troupe_observatory.models import Task

GROUP = "workflow.seventh-horizon.io"
WORKFLOW_LABEL = f"{GROUP}/workflow"
RUN_LABEL = f"{GROUP}/run"
TASK_LABEL = f"{GROUP}/task"
ATTEMPT_LABEL = f"{GROUP}/attempt"
CONTAINER = "main"
#: Label and annotation keys a task's metadata may not set: the operator's and the core's own.
_RESERVED_PREFIXES = (f"{GROUP}/", "app.kubernetes.io/")
_RESERVED_ANNOTATIONS = (OWNER_ANNOTATION, RETAIN_ANNOTATION)
#: Fields the API server owns; an observed pod echoed back as "keep this" leaves them out.
_SERVER_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation")


def pod_name(workflow: str, run: int, task: str, attempt: int) -> str:
    """``<workflow>-<run>-<task>-<attempt>``, cut to 63 characters with a hash when longer."""
    return dns1123_label(workflow, str(run), task, str(attempt))


def build_pod(workflow: str, namespace: str | None, run: int, task: Task, attempt: int) -> Manifest:
    """The pod of one attempt of one task. Built once: an existing pod is never rebuilt (pods are
    immutable), so a spec edit reaches only attempts that start after it."""
    meta = task.metadata
    labels = {k: v for k, v in ((meta.labels if meta else None) or {}).items() if not _reserved(k)}
    labels.update(
        {
            WORKFLOW_LABEL: dns1123_label(workflow),
            RUN_LABEL: str(run),
            TASK_LABEL: task.name,
            ATTEMPT_LABEL: str(attempt),
        }
    )
    annotations = {
        k: v
        for k, v in ((meta.annotations if meta else None) or {}).items()
        if k not in _RESERVED_ANNOTATIONS
    }
    container: dict[str, Any] = {"name": CONTAINER, "image": task.image}
    if task.command:
        container["command"] = list(task.command)
    if task.args:
        container["args"] = list(task.args)
    if task.env:
        container["env"] = [e.dump() for e in task.env]
    if task.resources:
        resources = task.resources.dump()
        if resources:
            container["resources"] = resources
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if task.timeout:
        spec["activeDeadlineSeconds"] = max(1, math.ceil(parse_duration(task.timeout).total_seconds()))
    metadata: dict[str, Any] = {
        "name": pod_name(workflow, run, task.name, attempt),
        "namespace": namespace,
        "labels": labels,
    }
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def _reserved(key: str) -> bool:
    return key.startswith(_RESERVED_PREFIXES)


def keep(observed: Manifest) -> Manifest:
    """An observed pod as a "keep it" manifest: itself, without what the server owns.

    Returning the pod as it is (rather than rebuilding it from a spec that may have changed since) is
    what makes the core's apply step a no-op for existing pods.
    """
    pod = {k: copy.deepcopy(v) for k, v in observed.items() if k != "status"}
    for key in _SERVER_METADATA:
        pod.get("metadata", {}).pop(key, None)
    return pod


def labels_of(pod: Manifest) -> tuple[int, str, int] | None:
    """(run, task, attempt) from a pod's labels, or None for a pod that is not a task pod."""
    labels = pod.get("metadata", {}).get("labels") or {}
    try:
        return int(labels[RUN_LABEL]), str(labels[TASK_LABEL]), int(labels[ATTEMPT_LABEL])
    except (KeyError, ValueError):
        return None


@dataclass(frozen=True)
class Outcome:
    """What a pod says about its attempt."""

    finished: bool
    succeeded: bool = False
    exit_code: int | None = None
    message: str | None = None
    finished_at: str | None = None
    started_at: str | None = None


def outcome(pod: Manifest) -> Outcome:
    status = pod.get("status") or {}
    phase = status.get("phase")
    terminated = next(
        (
            (cs.get("state") or {}).get("terminated")
            for cs in status.get("containerStatuses") or []
            if cs.get("name") == CONTAINER and (cs.get("state") or {}).get("terminated")
        ),
        None,
    )
    if phase not in ("Succeeded", "Failed"):
        return Outcome(finished=False, started_at=status.get("startTime"))
    exit_code = terminated.get("exitCode") if terminated else None
    finished_at = terminated.get("finishedAt") if terminated else None
    if phase == "Succeeded":
        return Outcome(True, True, exit_code if exit_code is not None else 0, None, finished_at)
    parts = []
    if exit_code is not None:
        parts.append(f"exit code {exit_code}")
    reason = status.get("reason") or (terminated or {}).get("reason")
    if reason:
        parts.append(f"({reason})" if parts else reason)
    detail = status.get("message") or (terminated or {}).get("message")
    text = " ".join(parts) or "the pod failed"
    if detail:
        text = f"{text}: {detail}"
    return Outcome(True, False, exit_code, text[:512], finished_at)
