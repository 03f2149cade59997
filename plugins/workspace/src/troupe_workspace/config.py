"""Operator-wide settings of the workspace operator, from its environment (the chart sets them)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from troupe import parse_duration

ENV_PREFIX = "TROUPE_WORKSPACE_"
#: Workspaces provisioning at once when the policy ConfigMap is missing or its value is not a number.
DEFAULT_CONCURRENCY = 2
POLICY_KEY = "workspaceConcurrency"


@dataclass(frozen=True)
class Settings:
    """What every workspace of this installation shares.

    ``policy_namespace``/``policy_name``: the ``sync-operator-policy`` ConfigMap (the operator's own
    namespace) whose ``workspaceConcurrency`` limits provisioning workspaces. ``disk_namespace``: where
    VMDiskImages live (the data-sync operator's namespace). ``fail_after``: how long an image that cannot
    be pulled or a crash loop is waited out before the workspace is Failed.
    """

    policy_namespace: str = "default"
    policy_name: str = "sync-operator-policy"
    disk_namespace: str = "default"
    default_concurrency: int = DEFAULT_CONCURRENCY
    fail_after: timedelta = timedelta(minutes=5)


def from_env(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    namespace, _, name = env.get(f"{ENV_PREFIX}POLICY", "default/sync-operator-policy").partition("/")
    default = env.get(f"{ENV_PREFIX}DEFAULT_CONCURRENCY", str(DEFAULT_CONCURRENCY))
    return Settings(
        policy_namespace=namespace or "default",
        policy_name=name or "sync-operator-policy",
        disk_namespace=env.get(f"{ENV_PREFIX}DISK_NAMESPACE", "default") or "default",
        default_concurrency=int(default) if default.isdigit() and int(default) > 0 else DEFAULT_CONCURRENCY,
        fail_after=parse_duration(env.get(f"{ENV_PREFIX}FAIL_AFTER", "5m")),
    )


def concurrency(data: dict[str, str] | None, default: int) -> tuple[int, str | None]:
    """The limit from the policy ConfigMap's data, and why the default was taken instead (None: it wasn't)."""
    if data is None:
        return default, f"ConfigMap has no {POLICY_KEY} (or is missing): using the default {default}"
    value = str(data.get(POLICY_KEY, "")).strip()
    if not value:
        return default, f"ConfigMap has no {POLICY_KEY}: using the default {default}"
    if not value.isdigit() or int(value) < 1:
        return (
            default,
            f"{POLICY_KEY} {value!r} is not a whole number of at least 1: using the default {default}",
        )
    return int(value), None
