"""Reliability on a real API server: SIGKILLs while objects converge and while they are deleted, and a
standby replica taking over from a dead leader. The operator runs as its chart's ServiceAccount.
"""

from __future__ import annotations

import base64
import os
import random
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import (
    ROOT,
    Helm,
    Operator,
    apply,
    create_namespace,
    delete_namespace,
    get,
    installed_operator,
    kubectl,
    kubectl_json,
    new_namespace_name,
    require_local_cluster,
    restart_apiserver,
    start_operator,
    wait_for,
)

pytestmark = pytest.mark.e2e

RELEASE = "rel"
CHART = ROOT / "charts" / "workshop-operator"
WORKSHOP = yaml.safe_load((ROOT / "plugins" / "workshop" / "examples" / "workshop.yaml").read_text())
COUNT = 8
KINDS = ("deployment", "service", "secret", "persistentvolumeclaim", "ingress")


class Installed:
    """The workshop chart installed once; operator processes started and killed at will."""

    def __init__(self, cluster: str, base: Path) -> None:
        self.base = base
        self.system = create_namespace(new_namespace_name("reliability-system"))
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
        self.helm = Helm(cluster)
        try:
            self.helm.install(CHART, self.system, release=RELEASE)
        except Exception:  # leave no release or namespace behind to block the next install
            self.close()
            raise
        key = kubectl_json("get", "secret", f"{RELEASE}-workshop-operator-password-key", "-n", self.system)
        self.env = {"TROUPE_WORKSHOP_PASSWORD_KEY": base64.b64decode(key["data"]["key"]).decode()}
        self.started: list[Operator] = []

    def start(self, *, standalone: bool = True, priority: int | None = None) -> Operator:
        log_dir = self.base / f"operator-{len(self.started)}"
        extra = ["--priority", str(priority)] if priority is not None else []
        op = start_operator(
            "workshop",
            None,
            f"{RELEASE}-workshop-operator",
            log_dir,
            sa_namespace=self.system,
            env=self.env,
            extra_args=extra,
            standalone=standalone,
        )
        self.started.append(op)
        return op

    def kill(self, op: Operator) -> None:
        os.killpg(op.process.pid, signal.SIGKILL)
        op.process.wait(10)

    def close(self) -> None:
        for op in self.started:
            op.stop()
        self.helm.uninstall_all()
        delete_namespace(self.system)


@pytest.fixture(scope="module")
def installed(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    chart = Installed(cluster, tmp_path_factory.mktemp("reliability"))
    yield chart
    chart.close()


def workshop(name: str) -> dict[str, Any]:
    return {**WORKSHOP, "metadata": {"name": name}, "spec": {**WORKSHOP["spec"], "name": name}}


def phases(namespace: str) -> dict[str, str | None]:
    items = kubectl_json("get", "workshops", "-n", namespace, "-o", "json")["items"]
    return {w["metadata"]["name"]: (w.get("status") or {}).get("phase") for w in items}


def children(namespace: str) -> dict[str, list[dict[str, Any]]]:
    return {k: kubectl_json("get", k, "-n", namespace, "-o", "json")["items"] for k in KINDS}


def test_sigkills_while_converging_and_deleting_leave_no_duplicate_orphan_or_new_password(
    installed: Installed, namespace: str
) -> None:
    users = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "users-notes"}, "data": {"a": "b"}}
    apply(users, namespace)
    before = get("configmap", "users-notes", namespace)
    op = installed.start()
    for i in range(COUNT):
        apply(workshop(f"w{i}"), namespace)
    passwords: dict[str, set[str]] = {}
    rng = random.Random(7)
    for _ in range(5):  # killed at random moments of the convergence
        time.sleep(rng.uniform(0.5, 2.5))
        for secret in children(namespace)["secret"]:
            passwords.setdefault(secret["metadata"]["name"], set()).add(secret["data"]["password"])
        installed.kill(op)
        op = installed.start()
    wait_for(
        lambda: phases(namespace),
        lambda p: len(p) == COUNT and all(v == "Running" for v in p.values()),
        120,
        "every workshop Running after the kills",
    )
    found = children(namespace)
    uids = {
        w["metadata"]["uid"] for w in kubectl_json("get", "workshops", "-n", namespace, "-o", "json")["items"]
    }
    for kind, items in found.items():
        assert len(items) == COUNT, (
            f"{len(items)} {kind}s for {COUNT} workshops: {[i['metadata']['name'] for i in items]}"
        )
        for item in items:
            owner = (item["metadata"].get("annotations") or {}).get("troupe.dev/owner-uid")
            assert owner in uids, f"{kind} {item['metadata']['name']} is an orphan (owner uid {owner})"
    for secret in found["secret"]:
        passwords.setdefault(secret["metadata"]["name"], set()).add(secret["data"]["password"])
    assert all(len(values) == 1 for values in passwords.values()), passwords  # never a second password

    installed.kill(op)  # a restart over settled workshops (retained claims included) writes nothing
    op = installed.start()
    wait_for(lambda: reconciles(op), lambda n: n >= COUNT, 60, "the restarted operator to reconcile them all")
    time.sleep(3)
    assert api_writes(op) == 0, f"{api_writes(op)} writes by an operator restarted over settled workshops"

    kubectl("delete", "workshops", "--all", "-n", namespace, "--wait=false")
    for _ in range(2):  # and killed while tearing down in order
        time.sleep(1.5)
        installed.kill(op)
        op = installed.start()
    wait_for(lambda: phases(namespace), lambda p: not p, 120, "every workshop gone after the kills")
    left = children(namespace)
    assert all(not left[k] for k in ("deployment", "service", "secret", "ingress")), left
    claims = left["persistentvolumeclaim"]
    assert len(claims) == COUNT and all(not c["metadata"].get("ownerReferences") for c in claims)  # kept
    assert get("configmap", "users-notes", namespace) == before  # a user's object: untouched
    assert "Traceback" not in op.log(), op.tail()
    op.stop()


def metric(op: Operator, name: str) -> float:
    """The sum of a counter's series on the operator's /metrics (0 while it is not up yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{op.metrics_port}/metrics", timeout=5) as rsp:
            text = rsp.read().decode()
    except OSError:
        return 0.0
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(f"{name}{{"))


def reconciles(op: Operator) -> float:
    return metric(op, "troupe_workshop_reconciles_total")


def api_writes(op: Operator) -> float:
    return metric(op, "troupe_workshop_api_writes_total")


def test_a_standby_replica_takes_over_within_fifteen_seconds(installed: Installed, namespace: str) -> None:
    leader = installed.start(standalone=False, priority=200)
    standby = installed.start(standalone=False, priority=100)
    wait_for(lambda: leader.log(), lambda log: "Troupe workshop" in log, 60, "the leader to start")
    apply(workshop("first"), namespace)
    wait_for(lambda: get("workshop", "first", namespace), lambda o: "status" in o, 60, "the leader to act")
    time.sleep(3)
    idle = reconciles(standby)
    apply(workshop("second"), namespace)
    wait_for(lambda: get("workshop", "second", namespace), lambda o: "status" in o, 60, "the leader again")
    assert reconciles(standby) == idle, "the standby reconciled while the leader lived"

    installed.kill(leader)
    killed = time.monotonic()
    apply(workshop("third"), namespace)
    wait_for(
        lambda: get("workshop", "third", namespace), lambda o: "status" in o, 60, "the standby to take over"
    )
    takeover = time.monotonic() - killed
    print(f"\n[reliability] standby took over and acted {takeover:.1f}s after the leader was killed")
    assert takeover <= 15, f"takeover took {takeover:.1f}s"
    standby.stop()


def test_an_api_server_outage_mid_run_is_ridden_out(installed: Installed, namespace: str) -> None:
    require_local_cluster()  # before anything is created: skipped where the harness cannot stop the server
    op = installed.start()
    for i in range(4):
        apply(workshop(f"o{i}"), namespace)
    outage = restart_apiserver(down_for=10)
    print(f"\n[reliability] API server down {outage.down_for:.1f}s")
    apply(workshop("after"), namespace)
    wait_for(
        lambda: phases(namespace),
        lambda p: len(p) == 5 and all(v == "Running" for v in p.values()),
        120,
        "every workshop Running after the outage",
    )
    assert all(len(items) == 5 for items in children(namespace).values())
    assert op.alive, op.tail()
    assert "Traceback" not in op.log(), op.tail(80)  # retried as warnings, not tracebacks
    kubectl("delete", "workshops", "--all", "-n", namespace, "--wait=true", "--timeout=120s")
    op.stop()


@pytest.fixture(scope="module")
def observatory(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    with installed_operator(
        "observatory", cluster, tmp_path_factory.mktemp("rel-obs"), release="relobs"
    ) as op:
        yield op


def dag(name: str) -> dict[str, Any]:
    """Three levels of three tasks, each taking a second: a run long enough to be killed in."""
    tasks = [
        {
            "name": f"l{level}t{i}",
            "image": "busybox:1.36",
            "metadata": {"annotations": {"troupe.dev/kwok-delay": "1s"}},
            **({"dependencies": [f"l{level - 1}t{j}" for j in range(3)]} if level else {}),
        }
        for level in range(3)
        for i in range(3)
    ]
    kind = {"apiVersion": "workflow.seventh-horizon.io/v1alpha1", "kind": "Observatory"}
    return {**kind, "metadata": {"name": name}, "spec": {"tasks": tasks}}


def test_workflows_survive_sigkills_with_one_pod_per_task_and_sane_times(
    observatory: Operator, namespace: str
) -> None:
    for i in range(3):
        apply(dag(f"d{i}"), namespace)
    op = observatory
    rng = random.Random(11)
    for _ in range(4):
        time.sleep(rng.uniform(0.5, 2.0))
        op.kill_and_restart()
    done = wait_for(
        lambda: kubectl_json("get", "observatories", "-n", namespace, "-o", "json")["items"],
        lambda items: len(items) == 3
        and all((o.get("status") or {}).get("phase") == "Succeeded" for o in items),
        120,
        "every workflow Succeeded after the kills",
    )
    pods = kubectl_json("get", "pods", "-n", namespace, "-o", "json")["items"]
    per_task: dict[tuple[str, str], int] = {}
    for pod in pods:
        labels = pod["metadata"]["labels"]
        key = (labels["workflow.seventh-horizon.io/workflow"], labels["workflow.seventh-horizon.io/task"])
        per_task[key] = per_task.get(key, 0) + 1
    assert len(per_task) == 27 and set(per_task.values()) == {1}, per_task  # no duplicate, none missing
    for workflow in done:
        for task in workflow["status"]["tasks"]:
            assert task["startedAt"] <= task["finishedAt"], task  # never finished before it started
