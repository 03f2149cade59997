"""When a DevServer runs (spec.running, lifetime, schedule), its status, and what the models refuse."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from troupe_devserver.builders import Flavor, Names
from troupe_devserver.config import Settings, from_env
from troupe_devserver.lifecycle import Plan, plan
from troupe_devserver.models import PUBLIC_KEY_PATTERN, DevServerFlavorSpec, DevServerSpec
from troupe_devserver.plugin import (
    DEVSERVER,
    flavor_refs,
    shared_claim_refs,
    troupe_aggregate_status,
    troupe_build_resources,
    troupe_validate,
)
from troupe_devserver.status import devserver_status, ssh_endpoint

from troupe import ChildKey, Children, ReconcileContext, isoformat

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq2Tq9sV0m6b1m0rj4Kc2dQe8lW5gq0zv4x3GZ5cH1N dev@laptop"
SMALL = Flavor("small", DevServerFlavorSpec())


def spec(**fields: Any) -> DevServerSpec:
    base: dict[str, Any] = {"owner": "dev@example.com", "flavor": "small", "ssh": {"publicKey": KEY}}
    return DevServerSpec.model_validate({**base, **fields})


def body(status: dict[str, Any] | None = None, generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "devserver.io/v1",
        "kind": "DevServer",
        "metadata": {"name": "box", "namespace": "team", "uid": "u", "generation": generation},
        "status": status or {},
    }


# --- lifecycle ----------------------------------------------------------------------------------------


def test_runs_by_default_from_now() -> None:
    p = plan(spec(), {}, 1, NOW)
    assert p == Plan(run=True, started_at=NOW)
    assert p.next_event(NOW) is None


def test_the_clock_starts_when_the_server_can_be_built() -> None:
    s = spec(lifetime="8h")
    assert plan(s, {}, 1, NOW, waiting=True) == Plan(run=True, started_at=None)
    later = NOW + timedelta(days=2)
    p = plan(s, {}, 1, later, waiting=False)
    assert p.run and p.started_at == later and p.next_stop == later + timedelta(hours=8)
    # once started, a flavor gone missing does not reset the clock
    assert plan(s, {"startedAt": isoformat(NOW)}, 1, NOW, waiting=True).started_at == NOW


def test_running_false_stops_manually_and_keeps_the_stop_time() -> None:
    p = plan(spec(running=False), {"startedAt": isoformat(NOW)}, 2, NOW + timedelta(hours=1))
    assert not p.run and p.stopped_by == "manual" and p.stopped_at == NOW + timedelta(hours=1)
    later = plan(
        spec(running=False), {"stoppedBy": "manual", "stoppedAt": isoformat(NOW)}, 2, NOW + timedelta(1)
    )
    assert later.stopped_at == NOW


def test_started_again_after_a_manual_stop_counts_from_now() -> None:
    status = {"stoppedBy": "manual", "stoppedAt": isoformat(NOW), "startedAt": isoformat(NOW - timedelta(1))}
    p = plan(spec(lifetime="8h"), status, 3, NOW + timedelta(hours=1))
    assert p.run and p.started_at == NOW + timedelta(hours=1)
    assert p.next_stop == NOW + timedelta(hours=9) and p.next_stop_reason == "lifetime"


def test_lifetime_warns_then_stops_and_stays_stopped() -> None:
    status = {"startedAt": isoformat(NOW)}
    p = plan(spec(lifetime="8h"), status, 1, NOW + timedelta(hours=1))
    assert p.run and p.warn_at == NOW + timedelta(hours=7, minutes=45)
    assert p.next_event(NOW + timedelta(hours=1)) == p.warn_at
    short = plan(spec(lifetime="1m"), status, 1, NOW)
    assert short.warn_at == NOW + timedelta(seconds=30)  # at most half the lifetime
    stop = plan(spec(lifetime="8h"), status, 1, NOW + timedelta(hours=8))
    assert not stop.run and stop.stopped_by == "lifetime" and stop.stopped_generation == 1
    recorded = {
        "startedAt": isoformat(NOW),
        "stoppedAt": isoformat(NOW + timedelta(hours=8)),
        "stoppedBy": "lifetime",
        "stoppedGeneration": 1,
    }
    assert not plan(spec(lifetime="8h"), recorded, 1, NOW + timedelta(days=3)).run
    # a spec change starts it again, counting afresh
    again = plan(spec(lifetime="8h"), recorded, 2, NOW + timedelta(days=3))
    assert again.run and again.started_at == NOW + timedelta(days=3)


def test_schedule_stops_and_starts() -> None:
    s = spec(schedule={"start": "0 8 * * mon-fri", "stop": "0 19 * * mon-fri", "timeZone": "Europe/Paris"})
    started = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # 08:00 in Paris
    p = plan(s, {"startedAt": isoformat(started)}, 1, started + timedelta(hours=1))
    assert (
        p.run
        and p.next_stop == datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
        and p.next_stop_reason == "schedule"
    )
    assert p.warn_at is None
    evening = datetime(2026, 11, 24, 18, 0, 30, tzinfo=UTC)
    stop = plan(s, {"startedAt": isoformat(started)}, 1, evening)
    assert not stop.run and stop.stopped_by == "schedule"
    assert stop.next_start == datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
    recorded = {"startedAt": isoformat(started), "stoppedAt": isoformat(evening), "stoppedBy": "schedule"}
    recorded["stoppedGeneration"] = 1  # type: ignore[assignment]
    night = plan(s, recorded, 1, datetime(2026, 11, 25, 3, 0, tzinfo=UTC))
    assert not night.run and night.next_start == datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
    morning = plan(s, recorded, 1, datetime(2026, 11, 25, 7, 0, 5, tzinfo=UTC))
    assert morning.run and morning.started_at == datetime(2026, 11, 25, 7, 0, 5, tzinfo=UTC)


def test_a_scheduled_start_does_not_override_running_false() -> None:
    s = spec(running=False, schedule={"start": "* * * * *"})
    assert not plan(s, {"stoppedBy": "manual", "stoppedAt": isoformat(NOW)}, 1, NOW + timedelta(hours=2)).run


def test_the_earlier_of_lifetime_and_schedule_stops_it() -> None:
    s = spec(lifetime="2h", schedule={"stop": "0 10 * * *"})
    p = plan(s, {"startedAt": isoformat(NOW)}, 1, NOW)
    assert p.next_stop == NOW + timedelta(hours=1) and p.next_stop_reason == "schedule"


# --- status -------------------------------------------------------------------------------------------


def statefulset() -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "box", "namespace": "team"}}


def pod(ready: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "box-0", "namespace": "team"},
        "spec": {"nodeName": "node-1"},
        "status": {
            "hostIP": "192.0.2.7",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def ssh_service(kind: str = "NodePort", **status: Any) -> dict[str, Any]:
    port = {"name": "ssh", "port": 22, **({"nodePort": 30022} if kind != "ClusterIP" else {})}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": Names("box").ssh, "namespace": "team"},
        "spec": {"type": kind, "ports": [port]},
        "status": status,
    }


def children(*objs: dict[str, Any]) -> Children:
    return Children({ChildKey.of(o): o for o in objs})


def status_of(
    s: DevServerSpec | None = None,
    flavor: Flavor | None = SMALL,
    shared: bool = True,
    observed: Children | None = None,
    p: Plan | None = None,
    recorded: dict[str, Any] | None = None,
) -> Any:
    s = s or spec()
    p = p or plan(s, recorded or {}, 1, NOW)
    return devserver_status(s, body(recorded), flavor, shared, observed or Children(), p, Settings(), NOW)


def conds(update: Any) -> dict[str, tuple[str, str, str]]:
    return {c.type: (c.status, c.reason, c.message) for c in update.conditions}


def test_pending_without_a_flavor_names_it() -> None:
    u = status_of(flavor=None)
    assert u.phase == "Pending"
    status, reason, message = conds(u)["FlavorNotFound"]
    assert status == "True" and reason == "FlavorNotFound" and "'small'" in message
    assert conds(u)["Ready"][:2] == ("False", "FlavorNotFound")


def test_pending_without_the_shared_claim() -> None:
    u = status_of(spec(sharedVolumeClaimName="data"), shared=False)
    assert u.phase == "Pending" and conds(u)["SharedVolumeMissing"][0] == "True"
    assert "'data'" in conds(u)["SharedVolumeMissing"][2]


def test_creating_then_running_with_the_ssh_command() -> None:
    assert status_of(observed=children(statefulset())).phase == "Creating"
    assert status_of(observed=children(statefulset(), pod(ready=False))).phase == "Creating"
    u = status_of(observed=children(statefulset(), pod(), ssh_service()))
    assert u.phase == "Running" and conds(u)["Ready"][0] == "True"
    assert u.fields["ssh"] == {
        "service": "box-ssh",
        "nodePort": 30022,
        "host": "192.0.2.7",
        "port": 30022,
        "command": "ssh -p 30022 dev@192.0.2.7",
    }
    assert u.fields["runningSince"] == isoformat(NOW) and u.fields["flavor"] == "small"


def test_creating_says_what_it_waits_for() -> None:
    def message(*objs: dict[str, Any]) -> str:
        update = status_of(observed=children(*objs))
        assert update.phase == "Creating"
        return str(conds(update)["Ready"][2])

    assert message() == "creating the server"
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "home-box-0"}}
    assert "home-box-0 is not bound" in message(statefulset(), {**claim, "status": {"phase": "Pending"}})
    bound = {**claim, "status": {"phase": "Bound"}}
    assert "create pod box-0" in message(statefulset(), bound)
    unscheduled = pod(ready=False)
    unscheduled["status"]["conditions"].append(
        {"type": "PodScheduled", "status": "False", "message": "0/2 nodes have nvidia.com/gpu"}
    )
    assert "not scheduled: 0/2 nodes have nvidia.com/gpu" in message(statefulset(), bound, unscheduled)
    pulling = pod(ready=False)
    pulling["status"]["containerStatuses"] = [
        {"name": "server", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}}
    ]
    assert "server of pod box-0 is waiting, ImagePullBackOff: no such image" in message(
        statefulset(), pulling
    )
    assert "to be ready" in message(statefulset(), bound, pod(ready=False))


def test_running_since_is_kept() -> None:
    earlier = isoformat(NOW - timedelta(hours=1))
    u = status_of(observed=children(statefulset(), pod()), recorded={"runningSince": earlier})
    assert u.fields["runningSince"] == earlier


def test_a_deleted_flavor_leaves_the_server_running_and_says_so() -> None:
    u = status_of(
        flavor=Flavor("small", DevServerFlavorSpec(), live=False), observed=children(statefulset(), pod())
    )
    assert u.phase == "Running"
    status, _, message = conds(u)["FlavorNotFound"]
    assert status == "True" and "keeps running" in message


def test_stopped_says_why_and_how_to_start() -> None:
    u = status_of(spec(running=False), observed=children(statefulset()))
    assert u.phase == "Stopped" and u.fields["stoppedBy"] == "manual"
    assert "spec.running" in conds(u)["Ready"][2] and "home is kept" in conds(u)["Ready"][2]


def test_expiring_soon_and_requeue_at_the_next_event() -> None:
    s = spec(lifetime="1h")
    recorded = {"startedAt": isoformat(NOW - timedelta(minutes=50))}
    u = status_of(s, observed=children(statefulset(), pod()), recorded=recorded)
    assert conds(u)["ExpiringSoon"][0] == "True" and u.fields["nextStop"] == isoformat(
        NOW + timedelta(minutes=10)
    )
    assert u.requeue_after == 600
    fresh = status_of(s, recorded={"startedAt": isoformat(NOW)})
    assert conds(fresh)["ExpiringSoon"][0] == "False" and fresh.requeue_after == 45 * 60


def test_ssh_endpoints_of_every_service_type() -> None:
    assert ssh_endpoint(None, None, "team") is None
    no_pod = ssh_endpoint(ssh_service(), None, "team")
    assert no_pod is not None and no_pod["command"] is None and no_pod["nodePort"] == 30022
    unscheduled_ip = pod()
    del unscheduled_ip["status"]["hostIP"]
    by_name = ssh_endpoint(ssh_service(), unscheduled_ip, "team")
    assert by_name is not None and by_name["command"] == "ssh -p 30022 dev@node-1"
    lb = ssh_endpoint(
        ssh_service("LoadBalancer", loadBalancer={"ingress": [{"ip": "203.0.113.5"}]}), None, "team"
    )
    assert lb is not None and lb["command"] == "ssh -p 22 dev@203.0.113.5"
    cluster = ssh_endpoint(ssh_service("ClusterIP"), None, "team")
    assert cluster is not None and cluster["command"] == "ssh -p 22 dev@box-ssh.team.svc"


# --- models, references, validation, settings ------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        KEY,
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7",
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= me@host with spaces",
        "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t",
        "ssh-rsa AAAA...",  # the seed's placeholder
    ],
)
def test_public_keys_accepted(key: str) -> None:
    assert re.match(PUBLIC_KEY_PATTERN, key)


@pytest.mark.parametrize(
    "key",
    [
        "my key",
        "ssh-rsa",
        "ssh-rsa BBBB",
        "ssh-dss AAAAB3",
        "ssh-rsa AAAA$$",
        "ssh-rsa AAAAB3\nssh-rsa AAAAB3",
    ],
)
def test_public_keys_refused(key: str) -> None:
    assert not re.match(PUBLIC_KEY_PATTERN, key)


def test_the_model_checks_key_and_owner_too() -> None:
    with pytest.raises(ValidationError, match="OpenSSH public key line"):
        spec(ssh={"publicKey": 'command="rm -rf ~" ssh-rsa AAAAB3'})
    with pytest.raises(ValidationError, match="e-mail address"):
        spec(owner="root")


def test_bad_cron_lines_are_refused_by_the_model() -> None:
    with pytest.raises(ValidationError, match="out of range"):
        spec(schedule={"start": "0 25 * * *"})
    with pytest.raises(ValidationError, match="time zone"):
        spec(schedule={"start": "0 8 * * *", "timeZone": "Mars/Olympus"})
    with pytest.raises(ValidationError):
        spec(lifetime="36501d")


def test_flavor_resources_accept_ints_and_strings() -> None:
    f = DevServerFlavorSpec.model_validate({"resources": {"limits": {"nvidia.com/gpu": 2, "memory": "8Gi"}}})
    assert f.resources.limits == {"nvidia.com/gpu": 2, "memory": "8Gi"}


def test_references_are_total() -> None:
    assert flavor_refs({"spec": {"flavor": "gpu"}}) == [(None, "gpu")]
    assert flavor_refs({}) == [] and flavor_refs({"spec": {"flavor": 3}}) == []
    assert shared_claim_refs({"metadata": {"namespace": "t"}, "spec": {"sharedVolumeClaimName": "d"}}) == [
        ("t", "d")
    ]
    assert (
        shared_claim_refs({"metadata": {"namespace": "t"}, "spec": {}}) == [] and shared_claim_refs({}) == []
    )


def test_names_that_cannot_name_a_statefulset_are_failed() -> None:
    def ctx(name: str) -> ReconcileContext[DevServerSpec]:
        b = body()
        b["metadata"]["name"] = name
        return ReconcileContext(kind=DEVSERVER, body=b, spec=spec(), now=NOW)

    assert troupe_validate(ctx("box")) == []
    for bad in ("1box", "my.box", "b" * 53):
        (message,) = troupe_validate(ctx(bad))
        assert "metadata.name" in message and "DNS label" in message


def test_settings_from_env() -> None:
    assert from_env({}) == Settings()
    s = from_env({"TROUPE_DEVSERVER_IMAGE": "x:1", "TROUPE_DEVSERVER_SSH_SERVICE_TYPE": "LoadBalancer"})
    assert s == Settings(image="x:1", ssh_service_type="LoadBalancer")
    with pytest.raises(ValueError, match="SSH_SERVICE_TYPE"):
        from_env({"TROUPE_DEVSERVER_SSH_SERVICE_TYPE": "Ingress"})


def test_hooks_read_the_flavor_and_the_claim_of_the_servers_namespace() -> None:
    flavor = {"apiVersion": "devserver.io/v1", "kind": "DevServerFlavor", "metadata": {"name": "small"}}
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"}}
    s = spec(sharedVolumeClaimName="data")

    def ctx(*related: dict[str, Any]) -> ReconcileContext[DevServerSpec]:
        return ReconcileContext(kind=DEVSERVER, body=body(), spec=s, now=NOW, related=children(*related))

    elsewhere = {**claim, "metadata": {"name": "data", "namespace": "other"}}
    here = {**claim, "metadata": {"name": "data", "namespace": "team"}}
    assert troupe_build_resources(ctx()) == []
    assert troupe_build_resources(ctx(flavor, elsewhere)) == []
    assert troupe_aggregate_status(ctx(flavor, elsewhere)).phase == "Pending"
    assert len(troupe_build_resources(ctx(flavor, here))) == 4
    update = troupe_aggregate_status(ctx(flavor, here))
    assert update.phase == "Creating" and update.fields["startedAt"] == isoformat(NOW)
