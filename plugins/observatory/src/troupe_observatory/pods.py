"""Task pods: the manifest of one attempt, and what an observed pod says about it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from troupe import OWNER_ANNOTATION, RETAIN_ANNOTATION, Manifest, dns1123_label, label_value, parse_duration
from troupe_observatory.models import Task

GROUP = "workflow.seventh-horizon.io"
WORKFLOW_LABEL = f"{GROUP}/workflow"
RUN_LABEL = f"{GROUP}/run"
TASK_LABEL = f"{GROUP}/task"
ATTEMPT_LABEL = f"{GROUP}/attempt"
CONTAINER = "main"
MAX_NAME = 63
#: The largest run number names are checked for: a run a minute for 19,000 years.
LAST_RUN = 9_999_999_999
#: Attempts are at most 11 (10 retries).
MAX_ATTEMPT = 11
#: Label and annotation keys a task's metadata may not set: the operator's and the core's own.
_RESERVED_PREFIXES = (f"{GROUP}/", "app.kubernetes.io/")
_RESERVED_ANNOTATIONS = (OWNER_ANNOTATION, RETAIN_ANNOTATION)


def pod_name(workflow: str, run: int, task: str, attempt: int) -> str:
    """The pod of one attempt: ``<workflow>-<run>-<task>-<attempt>`` when that reads back, else
    ``<workflow>-<task>-<hash>-<run>-<attempt>`` (workflow and task cleaned and cut, the hash theirs).

    No two (workflow, run, task, attempt) share a name. The plain form is used only when the task holds
    no '-' and the workflow no '.' (``dns1123_label`` keeps ``<workflow>-<task>`` as it is), so it reads
    back from the right. The hashed form keeps run and attempt in clear at the end; its second-to-last
    part is the run (digits) where the plain form's is the task (starting with a letter), so the two
    forms never meet. Two hashed names are equal only when their (workflow, task) hashes and cut
    prefixes are, which :func:`shared_pod_names` refuses within a workflow and the core's ownership rule
    catches between workflows. Pods are found by their labels, never by this name, so its form may change.
    """
    suffix = f"-{run}-{attempt}"
    stem = dns1123_label(workflow, task, max_length=MAX_NAME - len(suffix))
    if stem == f"{workflow}-{task}":
        return f"{workflow}-{run}-{task}-{attempt}"
    return stem + suffix


def shared_pod_names(workflow: str, tasks: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs of tasks whose pods could get the same name in this workflow.

    That takes a long workflow name (the cut leaves no room for the task) and two task names whose
    hashes are equal: about one workflow in 10,000 with 1,000 such tasks. Renaming one task fixes it.
    Names are compared at the shortest cut (the longest run number and attempt): a shared name at any
    run would also be shared there, as a cut of equal text is equal text.
    """
    seen: dict[str, str] = {}
    pairs = []
    for task in tasks:
        name = pod_name(workflow, LAST_RUN, task, MAX_ATTEMPT)
        if name in seen:
            pairs.append((seen[name], task))
        else:
            seen[name] = task
    return pairs


def build_pod(workflow: str, namespace: str | None, run: int, task: Task, attempt: int) -> Manifest:
    """The pod of one attempt of one task. Built once: an existing pod is never rebuilt (pods are
    immutable), so a spec edit reaches only attempts that start after it."""
    meta = task.metadata
    labels = {k: v for k, v in ((meta.labels if meta else None) or {}).items() if not _reserved(k)}
    labels.update(
        {
            WORKFLOW_LABEL: label_value(workflow),
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


def labels_of(pod: Manifest) -> tuple[int, str, int] | None:
    """(run, task, attempt) from a pod's labels, or None for a pod that is not a task pod."""
    labels = pod.get("metadata", {}).get("labels") or {}
    try:
        return int(labels[RUN_LABEL]), str(labels[TASK_LABEL]), int(labels[ATTEMPT_LABEL])
    except (KeyError, ValueError):
        return None


@dataclass(frozen=True)
class Outcome:
    """What a pod says about its attempt, with the pod's own times (metav1.Time strings)."""

    finished: bool
    succeeded: bool = False
    exit_code: int | None = None
    message: str | None = None
    created_at: str | None = None
    """The pod's creationTimestamp (the API server's clock)."""
    started_at: str | None = None
    """When it started running: status.startTime, else its container's start."""
    finished_at: str | None = None
    """When its container ended (finished pods)."""


def container_ended(pod: Manifest) -> bool:
    """Does the pod say its task's container has ended (whatever its phase says)?"""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return any(cs.get("name") == CONTAINER and (cs.get("state") or {}).get("terminated") for cs in statuses)


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
    created_at = (pod.get("metadata") or {}).get("creationTimestamp")
    started_at = status.get("startTime") or (terminated or {}).get("startedAt")
    if phase not in ("Succeeded", "Failed"):
        return Outcome(False, created_at=created_at, started_at=started_at)
    exit_code = terminated.get("exitCode") if terminated else None
    finished_at = terminated.get("finishedAt") if terminated else None
    if phase == "Succeeded":
        code = exit_code if exit_code is not None else 0
        return Outcome(True, True, code, None, created_at, started_at, finished_at)
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
    return Outcome(True, False, exit_code, text[:512], created_at, started_at, finished_at)
