"""The core's mechanisms for the coming operators, on a real API server, through the garden test plugin.

A cluster-scoped owner whose namespace comes first, a related kind whose change re-reconciles, admission
with a limit that changes live, a long-running action that survives a SIGKILL and is not redone, and an
optional child kind whose CRD arrives while the operator runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, apply, condition, free_port, get, kubectl, wait_for

from troupe.crd import build_crd
from troupe_example.garden import GARDEN

pytestmark = pytest.mark.e2e

STATUE_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "statues.art.example.troupe.dev"},
    "spec": {
        "group": "art.example.troupe.dev",
        "names": {"kind": "Statue", "plural": "statues", "singular": "statue", "listKind": "StatueList"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                        },
                    }
                },
            }
        ],
    },
}


@dataclass
class GardenOperator:
    """The garden operator as a subprocess with the cluster's own credentials (a test plugin has no chart)."""

    kubeconfig: str
    policy: str
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = [os.environ.get("UV", "uv"), "run", "--frozen", "troupe", "run", "garden", "--all-namespaces"]
        cmd += ["--standalone", "--metrics-port", str(free_port())]
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "TROUPE_GARDEN_POLICY": self.policy}
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """SIGKILL the whole process group; SIGTERM only uv, which passes it on once."""
        assert self.process is not None
        if sig == signal.SIGKILL:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        self.process.wait(30)

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])


@pytest.fixture(scope="module")
def palettes(cluster: str) -> Iterator[str]:
    name = f"palettes-{os.getpid()}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture(scope="module")
def gardens(
    cluster: str, palettes: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GardenOperator]:
    kubectl("delete", "crd", STATUE_CRD["metadata"]["name"], "--ignore-not-found", "--wait=true")
    apply(build_crd(GARDEN))
    kubectl("wait", "--for=condition=Established", "crd/gardens.example.troupe.dev", "--timeout=30s")
    set_policy(palettes, concurrency=5)
    apply(palette("sea", "blue"), palettes)
    op = GardenOperator(
        cluster, f"{palettes}/garden-policy", tmp_path_factory.mktemp("garden") / "garden.log"
    )
    op.start()
    yield op
    kubectl("delete", "gardens", "--all", "--wait=false")
    kubectl("delete", "crd", STATUE_CRD["metadata"]["name"], "--ignore-not-found", "--wait=false")
    if op.process and op.process.poll() is None:
        op.kill(signal.SIGTERM)
    print(f"\n[garden operator log tail]\n{op.tail()}")
    assert "Traceback" not in op.log.read_text(errors="replace"), op.tail()


def set_policy(namespace: str, concurrency: int) -> None:
    policy = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "garden-policy"}}
    apply({**policy, "data": {"concurrency": str(concurrency)}}, namespace)


def palette(name: str, colour: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"colour": colour}}


def garden(name: str, palettes: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.troupe.dev/v1alpha1",
        "kind": "Garden",
        "metadata": {"name": name},
        "spec": {"palette": {"namespace": palettes, "name": "sea"}, **spec},
    }


def phase(name: str) -> str | None:
    return ((get("garden", name) or {}).get("status") or {}).get("phase")


def wait_phase(name: str, wanted: str, timeout: float = 60) -> dict[str, Any]:
    """The garden as it is once in phase ``wanted`` (the very object the phase was read from)."""
    return wait_for(
        lambda: get("garden", name),
        lambda o: ((o or {}).get("status") or {}).get("phase") == wanted,
        timeout,
        f"{name} {wanted}",
    )


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def ready_since(obj: dict[str, Any]) -> datetime:
    """When a garden became Ready: its readyAt, else its Ready condition's last transition."""
    status = obj["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready" and c["status"] == "True")
    return at(status.get("readyAt") or ready["lastTransitionTime"])


def test_namespace_first_related_palette_and_cleanup(gardens: GardenOperator, palettes: str) -> None:
    apply(garden("g1", palettes))
    ready = wait_phase("g1", "Ready")
    assert ready["status"]["namespace"] == "garden-g1"
    owned = get("configmap", "palette", "garden-g1")
    assert owned is not None and owned["data"] == {"colour": "blue"}
    namespace = get("namespace", "garden-g1")
    assert namespace is not None and namespace["metadata"]["ownerReferences"][0]["name"] == "g1"

    apply(palette("sea", "green"), palettes)  # a related object changes: its dependents follow
    wait_for(
        lambda: get("configmap", "palette", "garden-g1"),
        lambda o: o["data"] == {"colour": "green"},
        30,
        "the garden's palette to turn green",
    )
    kubectl("delete", "garden", "g1", "--wait=true", "--timeout=60s")
    wait_for(
        lambda: get("namespace", "garden-g1"),
        lambda o: o is None or o["status"].get("phase") == "Terminating",
        60,
        "the garden's namespace to go",
    )


def test_admission_one_at_a_time_then_a_limit_raised_live(gardens: GardenOperator, palettes: str) -> None:
    set_policy(palettes, concurrency=1)
    apply(garden("a1", palettes, survey="birds", surveySeconds=10))  # long enough to queue a2 behind it
    wait_phase("a1", "Provisioning")
    apply(garden("a2", palettes, survey="bees", surveySeconds=3))
    queued = wait_phase("a2", "Queued")
    assert (
        "number 1 in line (limit 1)"
        in next(c for c in queued["status"]["conditions"] if c["type"] == "Ready")["message"]
    )
    first, second = wait_phase("a1", "Ready"), wait_phase("a2", "Ready", timeout=90)
    assert at(second["status"]["provisioningSince"]) >= ready_since(first)

    apply(garden("a3", palettes, survey="moths", surveySeconds=60))
    wait_phase("a3", "Provisioning")
    apply(garden("a4", palettes, survey="ants", surveySeconds=60))
    wait_phase("a4", "Queued")
    set_policy(palettes, concurrency=2)  # taken at once: a4 provisions while a3 still does
    wait_phase("a4", "Provisioning", timeout=20)
    assert phase("a3") == "Provisioning"
    kubectl("delete", "garden", "a1", "a2", "a3", "a4", "--wait=true", "--timeout=60s")
    set_policy(palettes, concurrency=5)


def test_an_action_survives_a_sigkill_and_is_not_redone(gardens: GardenOperator, palettes: str) -> None:
    apply(garden("s1", palettes, survey="owls", surveySeconds=6))
    wait_for(
        lambda: get("garden", "s1"),
        lambda o: ((o.get("status") or {}).get("actions") or {}).get("survey", {}).get("phase") == "Running",
        30,
        "the survey to run",
    )
    gardens.kill()  # mid-survey
    gardens.start()
    done = wait_phase("s1", "Ready", timeout=60)
    record = done["status"]["actions"]["survey"]
    assert record["phase"] == "Succeeded" and record["result"] == {"surveyed": "owls", "run": 1}
    runs = get("configmap", "surveys", "garden-s1")
    assert runs is not None and runs["data"]["runs"] == "1"  # the killed run never finished, one rerun did

    gardens.kill(signal.SIGTERM)  # a restart later: done, so not redone
    gardens.start()
    wait_for(lambda: get("garden", "s1"), lambda o: condition(o, "Ready") == "True", 30, "s1 still Ready")
    kubectl("annotate", "garden", "s1", "poke=1")  # an event, so a reconcile surely ran
    time.sleep(8)
    runs = get("configmap", "surveys", "garden-s1")
    assert runs is not None and runs["data"]["runs"] == "1"
    assert get("garden", "s1")["status"]["actions"]["survey"] == record  # type: ignore[index]
    kubectl("delete", "garden", "s1", "--wait=true", "--timeout=60s")


def test_an_optional_child_kind_installed_later(gardens: GardenOperator, palettes: str) -> None:
    apply(garden("plain", palettes))
    apply(garden("st1", palettes, statue=True))
    blocked = wait_for(
        lambda: get("garden", "st1"), lambda o: condition(o, "MissingAPI") == "True", 30, "MissingAPI on st1"
    )
    message = next(c for c in blocked["status"]["conditions"] if c["type"] == "MissingAPI")["message"]
    assert (
        "art.example.troupe.dev/v1 Statue is not served: install the art.example.troupe.dev CRDs" in message
    )
    assert condition(blocked, "Ready") == "False"
    assert wait_phase("plain", "Ready")  # a garden without a statue is not held up

    # No wait for API discovery: the operator's CRD stream sees the CRD established, and its Statue stream
    # retries the few hundred ms until discovery serves the kind.
    apply(STATUE_CRD)
    wait_for(
        lambda: get("statues.art.example.troupe.dev", "st1", "garden-st1"),
        lambda o: o is not None,
        60,
        "the Statue once its CRD is served",
    )
    freed = wait_for(
        lambda: get("garden", "st1"),
        lambda o: condition(o, "MissingAPI") == "False",
        30,
        "MissingAPI resolved",
    )
    assert condition(freed, "Ready") == "True"
    assert gardens.process is not None and gardens.process.poll() is None  # no restart was needed
    kubectl("delete", "garden", "plain", "st1", "--wait=true", "--timeout=60s")
