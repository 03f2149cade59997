"""Pure builders of a DevServer's children: a Secret with the key, two Services, one StatefulSet.

Spec, flavor and observed children in, manifests out; no clock, no client. The StatefulSet's pods and home
claims are made by the StatefulSet controller; the owner annotation in their templates makes the core
watch them as this server's (observe-only) children.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

from troupe import OWNER_ANNOTATION, Children, Manifest, dns1123_label, label_value, standard_labels
from troupe_devserver.config import Settings
from troupe_devserver.models import DevServerFlavorSpec, DevServerSpec

HOME = "/home/dev"
SHARED = "/shared"
SSH_PORT = 2222
UID = 1000
KEY_FILE = "authorized_keys"
#: The flavor a StatefulSet was built with, so a deleted flavor leaves the running server as it is.
FLAVOR_ANNOTATION = "devserver.io/flavor"
#: A hash of the public key in the pod template: a new key rolls the pod (the init container copies it).
KEY_HASH_ANNOTATION = "devserver.io/public-key-sha256"
SELECTOR_LABEL = "devserver.io/server"
#: The init container copies the key rather than mounting it: sshd's StrictModes refuses a group- or
#: world-readable authorized_keys, which is what a mounted Secret (root-owned, 0644 or fsGroup) gives.
INSTALL_KEY = f"""set -eu
umask 077
mkdir -p {HOME}/.ssh
chmod 700 {HOME}/.ssh
printf '%s\\n' "$SSH_PUBLIC_KEY" > {HOME}/.ssh/{KEY_FILE}.new
chmod 600 {HOME}/.ssh/{KEY_FILE}.new
mv {HOME}/.ssh/{KEY_FILE}.new {HOME}/.ssh/{KEY_FILE}
"""
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "runAsUser": UID,
    "runAsGroup": UID,
}


@dataclass(frozen=True)
class Names:
    server: str

    @property
    def statefulset(self) -> str:
        return self.server

    @property
    def headless(self) -> str:
        return dns1123_label(self.server, "pods")

    @property
    def ssh(self) -> str:
        return dns1123_label(self.server, "ssh")

    @property
    def secret(self) -> str:
        return dns1123_label(self.server, "sshkey")

    @property
    def pod(self) -> str:
        return f"{self.server}-0"

    @property
    def home_claim(self) -> str:
        return f"home-{self.server}-0"

    @property
    def selector(self) -> dict[str, str]:
        return {SELECTOR_LABEL: label_value(self.server)}


def owner_ref(namespace: str, name: str) -> str:
    return f"DevServer.devserver.io/{namespace}/{name}"


@dataclass(frozen=True)
class Flavor:
    """The flavor a server is built with; ``live`` False when it is the one recorded on its StatefulSet."""

    name: str
    spec: DevServerFlavorSpec
    live: bool = True


def flavor_of(spec: DevServerSpec, related: Children, observed: Children) -> Flavor | None:
    """The flavor to build with: the live DevServerFlavor named in the spec; when that is missing, the
    one the existing StatefulSet was built with (a running server is left as it is); else None (wait)."""
    live = related.named("DevServerFlavor", spec.flavor)
    if live is not None:
        return Flavor(spec.flavor, DevServerFlavorSpec.model_validate(live.get("spec") or {}))
    sts = observed.of_kind("StatefulSet")
    recorded = ((sts[0]["metadata"].get("annotations") or {}) if sts else {}).get(FLAVOR_ANNOTATION)
    if not recorded:
        return None
    try:
        snapshot = json.loads(recorded)
        return Flavor(
            str(snapshot["name"]), DevServerFlavorSpec.model_validate(snapshot.get("spec") or {}), live=False
        )
    except (ValueError, KeyError, TypeError):
        return None  # not ours to guess: wait for the flavor


def image(spec: DevServerSpec, flavor: Flavor, settings: Settings) -> str:
    return spec.image or flavor.spec.image or settings.image


def secret(spec: DevServerSpec, namespace: str, names: Names) -> Manifest:
    key = spec.ssh.public_key.strip() + "\n"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": names.secret, "namespace": namespace},
        "type": "Opaque",
        "data": {KEY_FILE: base64.b64encode(key.encode()).decode()},
    }


def headless_service(namespace: str, names: Names) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": names.headless, "namespace": namespace},
        "spec": {
            "clusterIP": "None",
            "selector": names.selector,
            "ports": [{"name": "ssh", "port": SSH_PORT, "targetPort": "ssh", "protocol": "TCP"}],
        },
    }


def ssh_service(namespace: str, names: Names, settings: Settings) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": names.ssh, "namespace": namespace},
        "spec": {
            "type": settings.ssh_service_type,
            "selector": names.selector,
            "ports": [{"name": "ssh", "port": 22, "targetPort": "ssh", "protocol": "TCP"}],
        },
    }


def statefulset(
    spec: DevServerSpec,
    flavor: Flavor,
    namespace: str,
    names: Names,
    settings: Settings,
    *,
    replicas: int,
) -> Manifest:
    owner = owner_ref(namespace, names.server)
    labels = {**standard_labels("devserver", "DevServer", names.server, "server"), **names.selector}
    # The pods and claims the StatefulSet controller makes are observed children: the owner annotation
    # and the managed-by label (in `labels`) are what the core's child watch recognises them by.
    observed_meta = {OWNER_ANNOTATION: owner}
    key_hash = hashlib.sha256(spec.ssh.public_key.strip().encode()).hexdigest()
    server_image = image(spec, flavor, settings)
    mounts = [{"name": "home", "mountPath": HOME}]
    volumes: list[Manifest] = []
    if spec.shared_volume_claim_name:
        mounts.append({"name": "shared", "mountPath": SHARED})
        volumes.append(
            {"name": "shared", "persistentVolumeClaim": {"claimName": spec.shared_volume_claim_name}}
        )
    # As strings: the API server returns quantities so, and an int would differ from it on every reconcile.
    resources = {
        part: {k: str(v) for k, v in values.items()}
        for part, values in (
            ("requests", flavor.spec.resources.requests),
            ("limits", flavor.spec.resources.limits),
        )
        if values
    }
    claim_spec: Manifest = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": spec.persistent_home_size}},
    }
    if spec.storage_class_name:
        claim_spec["storageClassName"] = spec.storage_class_name
    pod_spec: Manifest = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        "initContainers": [
            {
                "name": "authorized-keys",
                "image": server_image,
                "command": ["/bin/sh", "-c", INSTALL_KEY],
                "env": [
                    {
                        "name": "SSH_PUBLIC_KEY",
                        "valueFrom": {"secretKeyRef": {"name": names.secret, "key": KEY_FILE}},
                    }
                ],
                "securityContext": RESTRICTED,
                "volumeMounts": [{"name": "home", "mountPath": HOME}],
            }
        ],
        "containers": [
            {
                "name": "server",
                "image": server_image,
                "ports": [{"name": "ssh", "containerPort": SSH_PORT, "protocol": "TCP"}],
                "env": [{"name": "HOME", "value": HOME}, {"name": "DEVSERVER_OWNER", "value": spec.owner}],
                "resources": resources,
                "readinessProbe": {"tcpSocket": {"port": "ssh"}, "periodSeconds": 10},
                "securityContext": RESTRICTED,
                "volumeMounts": mounts,
            }
        ],
    }
    if volumes:
        pod_spec["volumes"] = volumes
    if flavor.spec.node_selector:
        pod_spec["nodeSelector"] = dict(flavor.spec.node_selector)
    if flavor.spec.tolerations:
        pod_spec["tolerations"] = [t.dump() for t in flavor.spec.tolerations]
    snapshot = json.dumps(
        {"name": flavor.name, "spec": flavor.spec.dump()}, sort_keys=True, separators=(",", ":")
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": names.statefulset,
            "namespace": namespace,
            "labels": names.selector,
            "annotations": {FLAVOR_ANNOTATION: snapshot},
        },
        "spec": {
            "replicas": replicas,
            "serviceName": names.headless,
            "selector": {"matchLabels": names.selector},
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate"},
            # Stopping (replicas 0) never touches the home; deleting does only when asked.
            "persistentVolumeClaimRetentionPolicy": {
                "whenScaled": "Retain",
                "whenDeleted": "Delete" if spec.delete_home_on_delete else "Retain",
            },
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {**observed_meta, KEY_HASH_ANNOTATION: key_hash},
                },
                "spec": pod_spec,
            },
            "volumeClaimTemplates": [
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "home", "labels": labels, "annotations": observed_meta},
                    "spec": claim_spec,
                }
            ],
        },
    }


def waiting(spec: DevServerSpec, flavor: Flavor | None, shared_present: bool, observed: Children) -> bool:
    """True while nothing can be built: no flavor, or a shared claim missing before the server exists."""
    exists = bool(observed.of_kind("StatefulSet"))  # a server's children hold one StatefulSet, its own
    return flavor is None or not (exists or shared_present or not spec.shared_volume_claim_name)


def build(
    spec: DevServerSpec,
    body: Manifest,
    flavor: Flavor | None,
    shared_present: bool,
    observed: Children,
    settings: Settings,
    *,
    run: bool,
) -> list[Manifest]:
    """The children a DevServer should have now.

    Nothing until its flavor and shared claim exist (it waits in Pending); once its StatefulSet exists, a
    flavor or claim that goes away leaves the server as it was (the flavor recorded on the StatefulSet).
    """
    meta = body["metadata"]
    namespace, names = meta["namespace"], Names(meta["name"])
    if flavor is None or waiting(spec, flavor, shared_present, observed):
        return []
    return [
        secret(spec, namespace, names),
        headless_service(namespace, names),
        ssh_service(namespace, names, settings),
        statefulset(spec, flavor, namespace, names, settings, replicas=1 if run else 0),
    ]
