"""Operator-wide settings of the devserver operator, from its environment (the chart sets them)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal, cast

ENV_PREFIX = "TROUPE_DEVSERVER_"
#: The image contract's default: sshd on port 2222 as uid 1000, home /home/dev (plugins/devserver/image).
DEFAULT_IMAGE = "troupe/devserver:0.1.0"
ServiceType = Literal["NodePort", "LoadBalancer", "ClusterIP"]
SERVICE_TYPES: tuple[ServiceType, ...] = ("NodePort", "LoadBalancer", "ClusterIP")


@dataclass(frozen=True)
class Settings:
    """What every DevServer of this installation shares."""

    image: str = DEFAULT_IMAGE
    ssh_service_type: ServiceType = "NodePort"


def from_env(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    service_type = env.get(f"{ENV_PREFIX}SSH_SERVICE_TYPE", "NodePort")
    if service_type not in SERVICE_TYPES:
        raise ValueError(
            f"{ENV_PREFIX}SSH_SERVICE_TYPE={service_type!r}: use one of {', '.join(SERVICE_TYPES)}"
        )
    return Settings(
        image=env.get(f"{ENV_PREFIX}IMAGE") or DEFAULT_IMAGE,
        ssh_service_type=cast(ServiceType, service_type),
    )
