"""Pure builders: a Workspace's spec and what is observed in, its children's manifests out."""

from __future__ import annotations

import re
from typing import Any

from troupe import OWNER_ANNOTATION, RETAIN_ANNOTATION, Children, Manifest, dns1123_label, label_value
from troupe_workspace.config import Settings
from troupe_workspace.models import DNS_LABEL, Container, VirtualMachine, WorkspaceSpec
from troupe_workspace.quantities import canonical

GROUP = "pelotech.ot"
#: Every pod, VM and Service of a workspace carries it: what the NetworkPolicy and selectors match.
WORKSPACE_LABEL = "pelotech.ot/workspace"
COMPONENT_LABEL = "pelotech.ot/component"
#: On a VMDiskImage the operator created: the workspace that created it (the sweeper's mark).
CREATED_BY_LABEL = "pelotech.ot/created-by-workspace"
VMDI_API = "crd.pelotech.ot/v1alpha1"
VM_API = "kubevirt.io/v1"
POLICY_NAME = "workspace-isolation"


def namespace_of(spec: WorkspaceSpec, name: str) -> str:
    """``spec.namespace``, else ``ws-<name>``; a name that is no DNS label (dots, too long) gets a hash."""
    if spec.namespace:
        return spec.namespace
    # The prefix is fixed, so the plain join is injective for names that are DNS labels already.
    plain = f"ws-{name}"
    return plain if len(plain) <= 63 and re.fullmatch(DNS_LABEL, name) else dns1123_label("ws", name)


def owner_key(name: str) -> str:
    """The owner annotation of the workspace's children, for pod templates (pods are watched by it)."""
    return f"Workspace.{GROUP}//{name}"


def disk_of(vm: VirtualMachine, related: Children, children: Children, settings: Settings) -> Manifest | None:
    """The VMDiskImage a VM boots from, whoever made it (a related object, or our own child)."""
    name = vm.spec.vm_disk_image_name
    return related.named("VMDiskImage", name, settings.disk_namespace) or children.named(
        "VMDiskImage", name, settings.disk_namespace
    )


def disk_phase(disk: Manifest | None) -> str | None:
    if disk is None:
        return None
    return str((disk.get("status") or {}).get("phase") or "Queued")


def build(
    spec: WorkspaceSpec,
    name: str,
    children: Children,
    related: Children,
    settings: Settings,
    *,
    admitted: bool = True,
    deleting: bool = False,
) -> list[Manifest]:
    """Every child the workspace should have now.

    Not admitted yet: nothing. Deleting: the namespace and our VMDiskImages only (the core deletes the
    VMs, workloads and policy first; the namespace goes by garbage collection once the finalizer is off;
    VMDiskImages are left to the sweeper, which deletes one only when no Workspace references it).
    """
    if not admitted:
        return []
    namespace = namespace_of(spec, name)
    built: list[Manifest] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {WORKSPACE_LABEL: label_value(name)}},
        }
    ]
    built += disk_images(spec, name, children, related, settings)
    # Nothing goes into the namespace before it is observed as ours: one that someone else made (a
    # NameConflict on the Namespace) never receives the workspace's objects.
    if deleting or children.named("Namespace", namespace) is None:
        return built
    for vm in spec.virtual_machines:
        disk = disk_of(vm, related, children, settings)
        ours = children.named("VirtualMachine", vm.name, namespace)
        # A VM is made once its disk is Ready, and kept while the disk resyncs (it has its own copy).
        if ours is not None or (disk is not None and disk_phase(disk) == "Ready"):
            built.append(virtual_machine(vm, name, namespace, disk, ours, settings))
    for container in spec.containers:
        built.append(deployment(container, name, namespace))
        if container.ports:
            built.append(service(container, name, namespace))
    if spec.network is not None and spec.network.isolate:
        built.append(network_policy(name, namespace))
    return built


def disk_images(
    spec: WorkspaceSpec, name: str, children: Children, related: Children, settings: Settings
) -> list[Manifest]:
    """VMDiskImages to create (missing, with a template) or keep (ours already).

    They are retained (no owner reference): garbage collection must not take a disk another workspace
    uses when its creator goes. Ours stay returned even when no VM names them any more, so the core never
    prunes them; the sweeper deletes an operator-made disk once no Workspace references it.
    """
    templates = {vm.spec.vm_disk_image_name: vm.spec.vm_disk_image for vm in spec.virtual_machines}
    ours = {str(d["metadata"]["name"]) for d in children.of_kind("VMDiskImage")}
    wanted = ours | {
        disk
        for disk, template in templates.items()
        if template is not None and related.named("VMDiskImage", disk, settings.disk_namespace) is None
    }
    built = []
    for disk in sorted(wanted):
        manifest: Manifest = {
            "apiVersion": VMDI_API,
            "kind": "VMDiskImage",
            "metadata": {
                "name": disk,
                "namespace": settings.disk_namespace,
                "labels": {CREATED_BY_LABEL: label_value(name)},
                "annotations": {RETAIN_ANNOTATION: "true"},
            },
        }
        template = templates.get(disk)
        if template is not None:
            manifest["spec"] = template.dump()
        built.append(manifest)
    return built


def labels(workspace: str, component: str) -> dict[str, str]:
    return {WORKSPACE_LABEL: label_value(workspace), COMPONENT_LABEL: component}


def virtual_machine(
    vm: VirtualMachine,
    workspace: str,
    namespace: str,
    disk: Manifest | None,
    observed: Manifest | None,
    settings: Settings,
) -> Manifest:
    volume = dns1123_label(vm.name, "disk")
    size = ((disk or {}).get("spec") or {}).get("diskSize")
    if size is None and observed is not None:  # the disk went away: keep the VM as it was made
        templates = (observed.get("spec") or {}).get("dataVolumeTemplates") or [{}]
        size = (
            (((templates[0].get("spec") or {}).get("storage") or {}).get("resources") or {})
            .get("requests", {})
            .get("storage")
        )
    data_volume: dict[str, Any] = {
        "metadata": {"name": volume},
        "spec": {
            # The data-sync operator snapshots each disk under the VMDiskImage's own name.
            "source": {
                "snapshot": {"namespace": settings.disk_namespace, "name": vm.spec.vm_disk_image_name}
            },
            "storage": {"resources": {"requests": {"storage": size or vm.spec.memory}}},
        },
    }
    return {
        "apiVersion": VM_API,
        "kind": "VirtualMachine",
        "metadata": {"name": vm.name, "namespace": namespace, "labels": labels(workspace, vm.name)},
        "spec": {
            "runStrategy": "Always",
            "dataVolumeTemplates": [data_volume],
            "template": {
                # These labels reach the virt-launcher pod: the NetworkPolicy selects VMs like pods.
                "metadata": {"labels": labels(workspace, vm.name)},
                "spec": {
                    "domain": {
                        "cpu": {"cores": vm.spec.cpu},
                        "memory": {"guest": vm.spec.memory},
                        "devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}}]},
                    },
                    "volumes": [{"name": "root", "dataVolume": {"name": volume}}],
                },
            },
        },
    }


def deployment(container: Container, workspace: str, namespace: str) -> Manifest:
    spec: dict[str, Any] = {"name": container.name, "image": container.image}
    if container.ports:
        spec["ports"] = [{"containerPort": p.container_port, "protocol": p.protocol} for p in container.ports]
    if container.env:
        spec["env"] = [{"name": e.name, "value": e.value} for e in container.env]
    if container.resources is not None:
        amounts = {key: canonical(value) for key, value in container.resources.dump().items()}
        if amounts:
            spec["resources"] = {"requests": amounts, "limits": amounts}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": container.name,
            "namespace": namespace,
            "labels": labels(workspace, container.name),
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels(workspace, container.name)},
            "template": {
                "metadata": {
                    "labels": labels(workspace, container.name),
                    # the core watches the pods by this annotation (their waiting reasons are the status)
                    "annotations": {OWNER_ANNOTATION: owner_key(workspace)},
                },
                "spec": {"containers": [spec]},
            },
        },
    }


def service(container: Container, workspace: str, namespace: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": container.name,
            "namespace": namespace,
            "labels": labels(workspace, container.name),
        },
        "spec": {
            "selector": labels(workspace, container.name),
            "ports": [
                {
                    "name": f"{p.protocol.lower()}-{p.container_port}",
                    "port": p.container_port,
                    "targetPort": p.container_port,
                    "protocol": p.protocol,
                }
                for p in container.ports
            ],
        },
    }


def network_policy(workspace: str, namespace: str) -> Manifest:
    members = {"podSelector": {"matchLabels": {WORKSPACE_LABEL: label_value(workspace)}}}
    dns = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": POLICY_NAME,
            "namespace": namespace,
            "labels": {WORKSPACE_LABEL: label_value(workspace)},
        },
        "spec": {
            **members,
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [members]}],
            "egress": [
                {"to": [members]},
                {
                    "to": [
                        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
                    ],
                    "ports": dns,
                },
            ],
        },
    }
