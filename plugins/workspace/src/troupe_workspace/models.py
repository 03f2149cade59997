"""The Workspace API (pelotech.ot/v1alpha1, cluster-scoped): the only source of its CRD schema."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from troupe import Condition, SpecModel, StatusModel

#: A Kubernetes resource quantity without a sign ("1", "500m", "2Gi", "1.5G").
QUANTITY_PATTERN = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][0-9]+)?$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"

Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=32)]
#: Component names become Deployment, Service and VirtualMachine names (and DNS names in the workspace).
ComponentName = Annotated[str, Field(pattern=DNS_LABEL, min_length=1, max_length=50)]
Phase = Literal["Provisioning", "Ready", "Failed"]


class DiskImageTemplate(SpecModel):
    """The VMDiskImage to create when the named one does not exist (the data-sync operator's spec)."""

    source_type: Literal["s3", "registry", "blank"]
    """Where the disk comes from: s3, registry or blank."""
    url: str = Field(default="not-provided", min_length=1, max_length=2048)
    """Where to fetch the image from (s3 or registry)."""
    secret_ref: str = Field(pattern=DNS_NAME, max_length=253)
    """Secret with the source's credentials, in the VMDiskImage namespace."""
    disk_size: Quantity
    """Size of the disk, e.g. 18Gi."""
    storage_class: str | None = Field(default=None, pattern=DNS_NAME, max_length=253)
    """StorageClass of the synced disk; the cluster's default when unset."""
    snapshot_class: str | None = Field(default=None, pattern=DNS_NAME, max_length=253)
    """VolumeSnapshotClass of its snapshot."""
    cert_config_map: str | None = Field(default=None, pattern=DNS_NAME, max_length=253)
    """ConfigMap with a CA bundle for the source."""


class VirtualMachineSpec(SpecModel):
    # The seed spells this field VMDiskImageName; the camelCase generator would not.
    vm_disk_image_name: str = Field(alias="VMDiskImageName", pattern=DNS_NAME, max_length=253)
    """The VMDiskImage (crd.pelotech.ot) the VM boots from, in the operator's VMDiskImage namespace."""
    vm_disk_image: DiskImageTemplate | None = Field(default=None, alias="vmDiskImage")
    """Create the VMDiskImage from this when it does not exist (else the VM waits for someone to)."""
    cpu: int = Field(default=1, ge=1, le=64)
    """Virtual CPU cores."""
    memory: Quantity = "2Gi"
    """Guest memory, e.g. 2Gi."""


class VirtualMachine(SpecModel):
    name: ComponentName
    """The VM's name in the workspace (a DNS label)."""
    spec: VirtualMachineSpec
    """What the VM boots from and its size."""


class Port(SpecModel):
    container_port: int = Field(ge=1, le=65535)
    """Port the container listens on; the Service exposes the same port."""
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    """TCP, UDP or SCTP."""


class EnvVar(SpecModel):
    name: str = Field(pattern=ENV_NAME, max_length=253)
    value: str = Field(default="", max_length=32768)


class ContainerResources(SpecModel):
    cpu: Quantity | None = None
    """CPU request and limit, e.g. 500m."""
    memory: Quantity | None = None
    """Memory request and limit, e.g. 256Mi."""


class Container(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.ports) || self.ports.all(p, self.ports.exists_one(q, "
                    "q.containerPort == p.containerPort && q.protocol == p.protocol))",
                    "message": "ports: each containerPort and protocol at most once",
                }
            ]
        }
    )

    name: ComponentName
    """The container's name: its Deployment and Service are called so in the workspace namespace."""
    image: str = Field(min_length=1, max_length=512, pattern=r"^\S+$")
    """Container image."""
    ports: list[Port] = Field(default_factory=list, max_length=32)
    """Ports it listens on; a Service exposes them (no ports, no Service)."""
    env: list[EnvVar] = Field(default_factory=list, max_length=128)
    """Environment variables."""
    resources: ContainerResources | None = None
    """CPU and memory, each requested and limited alike."""


class Network(SpecModel):
    isolate: bool = False
    """True: a NetworkPolicy lets the workspace's pods and VMs reach each other and cluster DNS, and admits
    nothing from outside the workspace. False (or no network block): no policy."""


class WorkspaceSpec(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.virtualMachines) || self.virtualMachines.all(v, "
                    "self.virtualMachines.exists_one(w, w.name == v.name))",
                    "message": "virtualMachines: names must be unique",
                },
                {
                    "rule": "!has(self.containers) || self.containers.all(c, "
                    "self.containers.exists_one(d, d.name == c.name))",
                    "message": "containers: names must be unique",
                },
                {
                    "rule": "!has(self.containers) || !has(self.virtualMachines) || "
                    "self.containers.all(c, !self.virtualMachines.exists(v, v.name == c.name))",
                    "message": "containers: a container may not share its name with a virtual machine",
                },
                {
                    "rule": "has(self.__namespace__) == has(oldSelf.__namespace__) && "
                    "(!has(self.__namespace__) || self.__namespace__ == oldSelf.__namespace__)",
                    "message": "namespace is immutable",
                },
            ]
        }
    )

    namespace: str | None = Field(default=None, pattern=DNS_LABEL, max_length=63)
    """The namespace the workspace's components live in, created by the operator (never one that exists
    already). Default: ws-<name>. Immutable."""
    virtual_machines: list[VirtualMachine] = Field(default_factory=list, max_length=32)
    """KubeVirt VMs, each booting from a VMDiskImage."""
    containers: list[Container] = Field(default_factory=list, max_length=64)
    """Containers, each a Deployment (and a Service for its ports)."""
    network: Network | None = None
    """Networking policy of the workspace."""


class VirtualMachineStatus(SpecModel):
    name: str
    phase: str
    """While the disk syncs its phase (Queued, Syncing, RetryableFailure), then the VM's printableStatus
    (Running once ready); DiskImageMissing, Failed, DataVolumeError."""
    message: str | None = None


class ContainerStatus(SpecModel):
    name: str
    status: str
    """Pending, Running or Failed."""
    reason: str | None = None
    """Why it is not Running (ImagePullBackOff, CrashLoopBackOff...)."""


class ResourceStatus(SpecModel):
    virtual_machines: list[VirtualMachineStatus] = Field(default_factory=list)
    containers: list[ContainerStatus] = Field(default_factory=list)


class WorkspaceStatus(StatusModel):
    phase: Phase | None = None
    """Provisioning, Ready or Failed."""
    message: str | None = None
    """What the workspace is doing or waiting for, or what failed."""
    conditions: list[Condition] = Field(default_factory=list)
    """Ready, Queued, DiskImageMissing, MissingAPI, NameConflict, PolicyDefaulted."""
    namespace: str | None = None
    """The namespace holding the workspace's components."""
    resource_status: ResourceStatus | None = None
    """Each VM's and container's state."""
    vms: str | None = None
    """Ready VMs of all, e.g. 1/2."""
    containers: str | None = None
    """Running containers of all, e.g. 1/1."""
    provisioning_since: str | None = None
    """When the workspace was admitted (took a provisioning slot)."""
    ready_at: str | None = None
    """When it was last Ready."""
