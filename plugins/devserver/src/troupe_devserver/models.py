"""The DevServer API (devserver.io/v1): DevServer and DevServerFlavor; the only source of their CRDs."""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, JsonValue, model_validator

from troupe import Cron, CronError, Duration, SpecModel, StatusModel

#: A Kubernetes resource quantity without a sign ("1", "500m", "2Gi", "1.5G").
QUANTITY_PATTERN = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][0-9]+)?$"
DNS_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
#: A plain e-mail address: something@domain.tld, no spaces.
EMAIL_PATTERN = r"^[^@\s]+@[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)+$"
KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
#: One OpenSSH public key line: a key type, the base64 key blob (every blob starts with a 4-byte length,
#: "AAAA" in base64), an optional comment. A blob elided as "AAAA..." (as documentation writes it, and the
#: seed's example does) is accepted: sshd ignores such a line, so the server runs and nobody can log in.
PUBLIC_KEY_PATTERN = (
    r"^("
    + "|".join(t.replace(".", r"\.") for t in KEY_TYPES)
    + r") AAAA[A-Za-z0-9+/]*(={0,3}|\.\.\.)( [^\r\n]*)?$"
)
KEY_MESSAGE = (
    "must be one OpenSSH public key line: a key type (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, ...), "
    "a space, the base64 key (AAAA...), and an optional comment, as in ~/.ssh/id_ed25519.pub"
)
OWNER_MESSAGE = "must be an e-mail address, such as user@example.com"
#: A cron line as the API server can check it: a macro or five fields (the operator parses it fully).
CRON_PATTERN = r"^(@[a-z]+|\S+( +\S+){4})$"
CRON_RULE: dict[str, JsonValue] = {
    "x-kubernetes-validations": [
        {
            "rule": f"self.matches({json.dumps(CRON_PATTERN)})",
            "message": "must be a cron line: five fields (minute hour day-of-month month day-of-week, e.g. "
            "'0 8 * * mon-fri') or a macro such as @daily",
        }
    ]
}
#: Every value of a resource map: an integer or a quantity string (Kubernetes' own CEL quantity library).
QUANTITY_MAP_RULE = {
    "rule": "self.all(k, isQuantity(string(self[k])))",
    "message": "every value must be a quantity, such as 1, 500m, 32Gi",
}


def matching(pattern: str, message: str) -> dict[str, JsonValue]:
    """A CEL rule refusing a string that does not match ``pattern`` with ``message`` (a regex pattern's
    own refusal only quotes the regex)."""
    return {
        "x-kubernetes-validations": [{"rule": f"self.matches({json.dumps(pattern)})", "message": message}]
    }


def checked(pattern: str, message: str) -> AfterValidator:
    """The same rule in the operator: the key line ends up in authorized_keys, so it is checked twice."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


ResourceMap = Annotated[
    dict[str, int | str],
    # 12 resource names: the API server's CEL cost budget allows the quantity rule on no more.
    Field(max_length=12, json_schema_extra={"x-kubernetes-validations": [QUANTITY_MAP_RULE]}),
]

Phase = Literal["Pending", "Creating", "Running", "Stopped", "Failed"]
StopReason = Literal["manual", "lifetime", "schedule"]


# --- DevServerFlavor ----------------------------------------------------------------------------------


class FlavorResources(SpecModel):
    """Compute of a server's container, as in a container's `resources`."""

    requests: ResourceMap = Field(default_factory=dict)
    """What the scheduler reserves, e.g. cpu: "8", memory: 32Gi."""
    limits: ResourceMap = Field(default_factory=dict)
    """The most the container may use; extended resources such as a GPU are limits: nvidia.com/gpu: 1."""


class Toleration(SpecModel):
    """A pod toleration, as in a pod spec."""

    key: str | None = Field(default=None, max_length=316)
    """The taint key; empty with operator Exists tolerates every taint."""
    operator: Literal["Exists", "Equal"] | None = None
    """Exists or Equal (default Equal)."""
    value: str | None = Field(default=None, max_length=63)
    """The taint value for operator Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """The taint effect to tolerate; all effects when unset."""
    toleration_seconds: int | None = Field(default=None, ge=0)
    """For NoExecute: how long the pod stays bound after the taint appears."""


class DevServerFlavorSpec(SpecModel):
    """A "t-shirt size" of DevServers: compute, GPU, and where such servers may run."""

    resources: FlavorResources = FlavorResources()
    """Requests and limits of the server's container (GPU included)."""
    node_selector: dict[Annotated[str, Field(max_length=316)], Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict, max_length=32
    )
    """Labels a node must have to run servers of this flavor."""
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    """Taints of such nodes that servers of this flavor tolerate."""
    image: str | None = Field(default=None, min_length=1, max_length=512, pattern=r"^\S+$")
    """Server image for this flavor (e.g. one with CUDA); a DevServer's own spec.image wins over it."""


# --- DevServer ----------------------------------------------------------------------------------------


class Ssh(SpecModel):
    public_key: Annotated[str, checked(PUBLIC_KEY_PATTERN, KEY_MESSAGE)] = Field(
        max_length=16384, json_schema_extra=matching(PUBLIC_KEY_PATTERN, KEY_MESSAGE)
    )
    """The owner's OpenSSH public key line (`ssh-ed25519 AAAA... comment`), installed as
    ~/.ssh/authorized_keys of the user `dev`."""


class Schedule(SpecModel):
    """Automatic start and stop on cron lines (Coder's autostart / autostop)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.start) || has(self.stop)",
                    "message": "a schedule needs start or stop (or both)",
                },
            ]
        }
    )

    start: str | None = Field(default=None, max_length=128, json_schema_extra=CRON_RULE)
    """Start the server at each tick, e.g. "0 8 * * mon-fri"."""
    stop: str | None = Field(default=None, max_length=128, json_schema_extra=CRON_RULE)
    """Stop the server at each tick, e.g. "0 19 * * *"."""
    time_zone: str | None = Field(default=None, min_length=1, max_length=64)
    """IANA time zone of both lines (default UTC), e.g. Europe/Paris."""

    @model_validator(mode="after")
    def _valid_lines(self) -> Schedule:
        # Parsed here, in the zone, so the lifecycle never meets a line or zone it cannot evaluate.
        for field, line in (("start", self.start), ("stop", self.stop)):
            if line is not None:
                try:
                    Cron.parse(line, self.time_zone)
                except CronError as exc:
                    raise ValueError(f"schedule.{field}: {exc}") from exc
        return self


class DevServerSpec(SpecModel):
    """A personal development machine: an SSH server with a persistent home, of a flavor."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.persistentHomeSize == oldSelf.persistentHomeSize",
                    "message": "persistentHomeSize cannot change: the home claim is made once "
                    "(expand the claim itself if its StorageClass allows it)",
                },
                {
                    "rule": "has(self.storageClassName) == has(oldSelf.storageClassName) && "
                    "(!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)",
                    "message": "storageClassName cannot change: the home claim is made once",
                },
            ]
        }
    )

    owner: Annotated[str, checked(EMAIL_PATTERN, OWNER_MESSAGE)] = Field(
        max_length=254, json_schema_extra=matching(EMAIL_PATTERN, OWNER_MESSAGE)
    )
    """The e-mail address of the person the server is for."""
    flavor: str = Field(min_length=1, max_length=253, pattern=DNS_NAME)
    """The DevServerFlavor (cluster-scoped) giving compute, GPU and placement."""
    ssh: Ssh
    """How the owner logs in."""
    persistent_home_size: str = Field(
        default="10Gi",
        max_length=32,
        json_schema_extra=matching(QUANTITY_PATTERN, "must be a storage size, such as 100Gi or 500Mi"),
    )
    """Size of the home volume at /home/dev, kept across stops, restarts and (by default) deletion."""
    storage_class_name: str | None = Field(default=None, min_length=1, max_length=253, pattern=DNS_NAME)
    """StorageClass of the home volume; the cluster's default when unset."""
    shared_volume_claim_name: str | None = Field(default=None, min_length=1, max_length=253, pattern=DNS_NAME)
    """An existing ReadWriteMany PersistentVolumeClaim in the same namespace, mounted at /shared."""
    image: str | None = Field(default=None, min_length=1, max_length=512, pattern=r"^\S+$")
    """Server image; the flavor's image, else the operator's default (chart value devservers.image)."""
    running: bool = True
    """False stops the server (no pod; the home is kept); true starts it again."""
    lifetime: Duration | None = None
    """Stop (not delete) the server this long after it last started, e.g. 8h."""
    schedule: Schedule | None = None
    """Start and stop on a schedule."""
    delete_home_on_delete: bool = False
    """Delete the home volume with the DevServer. By default it is kept (see the README)."""


class SshStatus(SpecModel):
    service: str | None = None
    """The Service that reaches the server's sshd."""
    node_port: int | None = None
    """Its node port (service type NodePort)."""
    host: str | None = None
    """Where to connect: the node's address for a NodePort, the load balancer's, or the Service's DNS name."""
    port: int | None = None
    """The port to connect to at that host."""
    command: str | None = None
    """The command line to log in with."""


class DevServerStatus(StatusModel):
    phase: Phase | None = None
    """Pending, Creating, Running, Stopped or Failed."""
    flavor: str | None = None
    """The flavor the server runs with."""
    ssh: SshStatus | None = None
    """How to log in."""
    started_at: str | None = None
    """When the server last started (the lifetime counts from it)."""
    stopped_at: str | None = None
    """When the server last stopped."""
    stopped_by: StopReason | None = None
    """Why it stopped: manual (spec.running false), lifetime or schedule."""
    stopped_generation: int | None = None
    """The spec generation an automatic stop happened at: a spec change after it starts the server again."""
    next_start: str | None = None
    """The next scheduled start (spec.schedule.start) while stopped."""
    next_stop: str | None = None
    """The next automatic stop (lifetime or spec.schedule.stop) while running."""
    running_since: str | None = None
    """When the pod last became ready."""
