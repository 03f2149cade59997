"""Operator-wide settings of the workshop operator, from its environment (the chart sets them)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from troupe import parse_duration

ENV_PREFIX = "TROUPE_WORKSHOP_"


@dataclass(frozen=True)
class Settings:
    """What every workshop of this installation shares.

    ``password_key`` derives each instance's first RStudio password (HMAC of the Workshop's uid), so the
    builders stay pure; an existing password Secret is always kept as it is.
    """

    ingress_class: str = "traefik"
    password_key: bytes = field(default=b"", repr=False)
    fail_after: timedelta = timedelta(minutes=5)
    restart_after: timedelta = timedelta(minutes=10)


def from_env(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    key = env.get(f"{ENV_PREFIX}PASSWORD_KEY", "")
    return Settings(
        ingress_class=env.get(f"{ENV_PREFIX}INGRESS_CLASS", "traefik"),
        # Without a key from the chart, one per process: passwords already issued live in their Secrets.
        password_key=key.encode() if key else secrets.token_bytes(32),
        fail_after=parse_duration(env.get(f"{ENV_PREFIX}FAIL_AFTER", "5m")),
        restart_after=parse_duration(env.get(f"{ENV_PREFIX}RESTART_AFTER", "10m")),
    )
