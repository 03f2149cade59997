"""The devserver's pure builders: defaults, every optional field, the waits, a flavor gone missing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from troupe_devserver.builders import FLAVOR_ANNOTATION, KEY_HASH_ANNOTATION, Flavor, Names, build, flavor_of
from troupe_devserver.config import Settings
from troupe_devserver.models import DevServerFlavorSpec, DevServerSpec

from troupe import OWNER_ANNOTATION, ChildKey, Children

SETTINGS = Settings()

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq2Tq9sV0m6b1m0rj4Kc2dQe8lW5gq0zv4x3GZ5cH1N dev@laptop"


def spec(**fields: Any) -> DevServerSpec:
    base: dict[str, Any] = {"owner": "dev@example.com", "flavor": "small", "ssh": {"publicKey": KEY}}
    return DevServerSpec.model_validate({**base, **fields})


def body(status: dict[str, Any] | None = None, name: str = "box", generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "devserver.io/v1",
        "kind": "DevServer",
        "metadata": {"name": name, "namespace": "team", "uid": "uid-1", "generation": generation},
        "status": status or {},
    }


def flavor_body(name: str = "small", **flavor_spec: Any) -> dict[str, Any]:
    default = {"resources": {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "4Gi"}}}
    return {
        "apiVersion": "devserver.io/v1",
        "kind": "DevServerFlavor",
        "metadata": {"name": name},
        "spec": flavor_spec or default,
    }


def objects(*objs: dict[str, Any]) -> Children:
    return Children({ChildKey.of(o): o for o in objs})


def built(
    s: DevServerSpec | None = None,
    *,
    flavor: dict[str, Any] | None = None,
    shared: bool = True,
    observed: Children | None = None,
    run: bool = True,
    settings: Settings = SETTINGS,
) -> dict[str, dict[str, Any]]:
    s = s or spec()
    related = objects(flavor if flavor is not None else flavor_body())
    resolved = flavor_of(s, related, observed or Children())
    out = build(s, body(), resolved, shared, observed or Children(), settings, run=run)
    return {f"{m['kind']}/{m['metadata']['name']}": m for m in out}


def pod_spec(children: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return dict(children["StatefulSet/box"]["spec"]["template"]["spec"])


def test_defaults_give_a_secret_two_services_and_a_statefulset() -> None:
    children = built()
    assert sorted(children) == ["Secret/box-sshkey", "Service/box-pods", "Service/box-ssh", "StatefulSet/box"]
    assert all(m["metadata"]["namespace"] == "team" for m in children.values())
    secret = children["Secret/box-sshkey"]
    assert base64.b64decode(secret["data"]["authorized_keys"]).decode() == KEY + "\n"
    headless = children["Service/box-pods"]["spec"]
    assert headless["clusterIP"] == "None" and headless["ports"][0]["port"] == 2222
    ssh = children["Service/box-ssh"]["spec"]
    assert ssh["type"] == "NodePort" and ssh["ports"][0] == {
        "name": "ssh",
        "port": 22,
        "targetPort": "ssh",
        "protocol": "TCP",
    }
    assert headless["selector"] == ssh["selector"] == {"devserver.io/server": "box"}


def test_statefulset_defaults() -> None:
    sts = built()["StatefulSet/box"]["spec"]
    assert sts["replicas"] == 1 and sts["serviceName"] == "box-pods"
    assert sts["selector"]["matchLabels"] == {"devserver.io/server": "box"}
    assert sts["persistentVolumeClaimRetentionPolicy"] == {"whenScaled": "Retain", "whenDeleted": "Retain"}
    (claim,) = sts["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "home"
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}
    (container,) = sts["template"]["spec"]["containers"]
    assert container["image"] == "troupe/devserver:0.1.0"
    assert container["ports"] == [{"name": "ssh", "containerPort": 2222, "protocol": "TCP"}]
    assert container["volumeMounts"] == [{"name": "home", "mountPath": "/home/dev"}]
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "4Gi"}}
    assert "volumes" not in sts["template"]["spec"]
    assert "nodeSelector" not in sts["template"]["spec"] and "tolerations" not in sts["template"]["spec"]


def test_pod_passes_the_restricted_profile() -> None:
    pod = pod_spec(built())
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    for c in pod["initContainers"] + pod["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 1000
        assert "privileged" not in sc and "hostPort" not in json.dumps(c)
    assert "hostNetwork" not in pod and "hostPID" not in pod


def test_init_container_copies_the_key_with_strict_modes_and_mounts_no_secret() -> None:
    pod = pod_spec(built())
    (init,) = pod["initContainers"]
    script = init["command"][-1]
    assert "chmod 700 /home/dev/.ssh" in script and "chmod 600 /home/dev/.ssh/authorized_keys.new" in script
    assert "mv /home/dev/.ssh/authorized_keys.new /home/dev/.ssh/authorized_keys" in script
    assert init["env"] == [
        {
            "name": "SSH_PUBLIC_KEY",
            "valueFrom": {"secretKeyRef": {"name": "box-sshkey", "key": "authorized_keys"}},
        }
    ]
    assert init["volumeMounts"] == [{"name": "home", "mountPath": "/home/dev"}]
    assert "secret" not in json.dumps(pod.get("volumes", []))


def test_a_new_key_rolls_the_pod() -> None:
    one = built()["StatefulSet/box"]["spec"]["template"]["metadata"]["annotations"][KEY_HASH_ANNOTATION]
    other_key = spec(ssh={"publicKey": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 other"})
    two = built(other_key)["StatefulSet/box"]["spec"]["template"]["metadata"]["annotations"][
        KEY_HASH_ANNOTATION
    ]
    assert one != two


def test_pods_and_claims_carry_the_owner_annotation_and_managed_by_label() -> None:
    sts = built()["StatefulSet/box"]["spec"]
    for meta in (sts["template"]["metadata"], sts["volumeClaimTemplates"][0]["metadata"]):
        assert meta["annotations"][OWNER_ANNOTATION] == "DevServer.devserver.io/team/box"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "troupe-devserver"
        assert meta["labels"]["devserver.io/server"] == "box"


def test_gpu_flavor_gives_limits_node_selector_tolerations_and_image() -> None:
    gpu = flavor_body(
        "gpu-large",
        resources={
            "requests": {"cpu": "8", "memory": "32Gi"},
            "limits": {"memory": "32Gi", "nvidia.com/gpu": 1},
        },
        nodeSelector={"nvidia.com/gpu.present": "true"},
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        image="example.org/cuda-dev:12",
    )
    pod = pod_spec(built(spec(flavor="gpu-large"), flavor=gpu))
    (container,) = pod["containers"]
    # quantities as strings, as the API server returns them: no re-apply on every reconcile
    assert container["resources"]["limits"] == {"memory": "32Gi", "nvidia.com/gpu": "1"}
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert container["image"] == pod["initContainers"][0]["image"] == "example.org/cuda-dev:12"


def test_image_precedence_spec_then_flavor_then_operator_default() -> None:
    with_image = flavor_body(resources={}, image="flavor/image:1")
    assert pod_spec(built(spec(image="mine:2"), flavor=with_image))["containers"][0]["image"] == "mine:2"
    assert pod_spec(built(flavor=with_image))["containers"][0]["image"] == "flavor/image:1"
    custom = Settings(image="registry.local/dev:3")
    assert pod_spec(built(settings=custom))["containers"][0]["image"] == "registry.local/dev:3"


def test_empty_flavor_resources_leave_the_container_without_resources() -> None:
    assert pod_spec(built(flavor=flavor_body(resources={})))["containers"][0]["resources"] == {}


def test_optional_fields() -> None:
    s = spec(
        persistentHomeSize="100Gi",
        storageClassName="fast",
        sharedVolumeClaimName="efs-shared-claim",
        deleteHomeOnDelete=True,
    )
    sts = built(s)["StatefulSet/box"]["spec"]
    claim = sts["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "100Gi" and claim["storageClassName"] == "fast"
    assert sts["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    assert sts["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Retain"
    pod = sts["template"]["spec"]
    assert pod["volumes"] == [{"name": "shared", "persistentVolumeClaim": {"claimName": "efs-shared-claim"}}]
    assert {"name": "shared", "mountPath": "/shared"} in pod["containers"][0]["volumeMounts"]


def test_ssh_service_type_from_settings() -> None:
    lb = built(settings=Settings(ssh_service_type="LoadBalancer"))
    assert lb["Service/box-ssh"]["spec"]["type"] == "LoadBalancer"


def test_stopped_is_zero_replicas_with_everything_else_kept() -> None:
    children = built(run=False)
    assert children["StatefulSet/box"]["spec"]["replicas"] == 0
    assert len(children) == 4


def test_waits_without_a_flavor_or_a_shared_claim() -> None:
    s = spec(sharedVolumeClaimName="data")
    assert build(s, body(), None, True, Children(), SETTINGS, run=True) == []
    assert built(s, shared=False) == {}
    assert len(built(s, shared=True)) == 4


def test_a_claim_gone_after_the_start_leaves_the_server_as_it_is() -> None:
    s = spec(sharedVolumeClaimName="data")
    sts = built(s)["StatefulSet/box"]
    assert len(built(s, shared=False, observed=objects(sts))) == 4


def test_the_flavor_is_recorded_and_used_when_the_flavor_is_deleted() -> None:
    sts = built()["StatefulSet/box"]
    recorded = json.loads(sts["metadata"]["annotations"][FLAVOR_ANNOTATION])
    assert recorded["name"] == "small" and recorded["spec"]["resources"]["requests"]["cpu"] == "2"
    s = spec()
    resolved = flavor_of(s, Children(), objects(sts))
    assert resolved == Flavor("small", DevServerFlavorSpec.model_validate(recorded["spec"]), live=False)
    again = build(s, body(), resolved, True, objects(sts), SETTINGS, run=True)
    assert next(m for m in again if m["kind"] == "StatefulSet")["spec"] == sts["spec"]


def test_renamed_to_a_missing_flavor_keeps_the_old_one() -> None:
    sts = built()["StatefulSet/box"]
    resolved = flavor_of(spec(flavor="huge"), Children(), objects(sts))
    assert resolved is not None and resolved.name == "small" and not resolved.live


def test_a_garbled_flavor_record_means_wait() -> None:
    sts = built()["StatefulSet/box"]
    sts["metadata"]["annotations"][FLAVOR_ANNOTATION] = "{not json"
    assert flavor_of(spec(), Children(), objects(sts)) is None


def test_names_are_injective_between_call_sites() -> None:
    # server "a-ssh"'s headless Service and server "a"'s SSH Service never share a name
    assert Names("a-ssh").headless != Names("a").ssh
    assert Names("a-pods").ssh != Names("a").headless
    n = Names("box")
    assert (n.statefulset, n.pod, n.home_claim) == ("box", "box-0", "home-box-0")
