"""The workshop operator on a real API server, run as its chart's ServiceAccount.

kwok makes the RStudio pods Running and Ready and binds the claims, so a workshop lives its whole life
here: Creating, Running with a URL, ExpiringSoon, Terminating in order, deleted, its claims kept.
"""

from __future__ import annotations

import base64
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import (
    ROOT,
    Operator,
    apply,
    get,
    installed_operator,
    kubectl,
    kubectl_json,
    wait_for,
)

pytestmark = pytest.mark.e2e

EXAMPLES = ROOT / "plugins" / "workshop" / "examples"
RELEASE = "ws"


@pytest.fixture(scope="module")
def operator(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    def password_key(system: str) -> dict[str, str]:
        # what the chart's Deployment passes from the key Secret it made
        secret = kubectl_json("get", "secret", f"{RELEASE}-workshop-operator-password-key", "-n", system)
        return {"TROUPE_WORKSHOP_PASSWORD_KEY": base64.b64decode(secret["data"]["key"]).decode()}

    log_dir = tmp_path_factory.mktemp("workshop-operator")
    with installed_operator("workshop", cluster, log_dir, release=RELEASE, env=password_key) as op:
        yield op


def workshop(name: str, namespace: str) -> dict[str, Any] | None:
    return get("workshop", name, namespace)


def phase(obj: dict[str, Any] | None) -> str | None:
    return ((obj or {}).get("status") or {}).get("phase")


def wait_phase(name: str, namespace: str, *phases: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(
        lambda: workshop(name, namespace),
        lambda o: phase(o) in phases,
        timeout=timeout,
        describe=f"Workshop {name} to be {' or '.join(phases)}",
    )


def scrape(operator: Operator) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5) as rsp:
        text = rsp.read().decode()
    return {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line and not line.startswith("#") and "{" not in line.split()[0]
    }


def cond(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def test_seed_example_runs_with_a_url_heals_rolls_out_and_tears_down(
    operator: Operator, namespace: str
) -> None:
    apply((EXAMPLES / "workshop.yaml").read_text(), namespace)
    obj = wait_phase("intro-to-r", namespace, "Running")
    status = obj["status"]
    assert status["url"] == "http://intro-to-r.workshops.example.org/"
    assert status["passwordSecret"] == "intro-to-r-password"
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert cond(obj, "Ready")["status"] == "True" and cond(obj, "ExpiringSoon")["status"] == "False"
    assert status["createdAt"] == obj["metadata"]["creationTimestamp"] and status["startedAt"]
    assert status["expiresAt"] > status["startedAt"]
    uid = obj["metadata"]["uid"]

    # the children, field by field
    pvc = get("pvc", "intro-to-r-home", namespace)
    assert pvc["status"]["phase"] == "Bound"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert pvc["metadata"]["annotations"]["troupe.dev/retain"] == "true"
    assert not pvc["metadata"].get("ownerReferences")  # retained: garbage collection never takes it
    dep = get("deployment", "intro-to-r", namespace)
    assert dep["metadata"]["ownerReferences"][0]["uid"] == uid
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "rocker/rstudio:latest"
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    assert container["ports"][0]["containerPort"] == 8787
    assert dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 60
    svc = get("service", "intro-to-r", namespace)
    assert svc["spec"]["ports"][0]["port"] == 8787
    ing = get("ingress", "intro-to-r", namespace)
    assert ing["spec"]["ingressClassName"] == "traefik"
    assert ing["spec"]["rules"][0]["host"] == "intro-to-r.workshops.example.org"
    assert ing["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.entrypoints"] == "web"
    secret = get("secret", "intro-to-r-password", namespace)
    password = base64.b64decode(secret["data"]["password"]).decode()
    assert len(password) == 24 and password not in yaml.safe_dump(obj)
    assert scrape(operator)["troupe_workshop_participants"] >= 1
    out = kubectl("get", "workshops", "-n", namespace).stdout
    assert out.split()[:5] == ["NAME", "PHASE", "URL", "EXPIRES", "AGE"] and "Running" in out

    # a deleted child is put back, the password Secret with the same password
    kubectl("delete", "service", "intro-to-r", "-n", namespace)
    kubectl("delete", "secret", "intro-to-r-password", "-n", namespace)
    wait_for(lambda: get("service", "intro-to-r", namespace), describe="the Service put back")
    back = wait_for(lambda: get("secret", "intro-to-r-password", namespace), describe="the Secret put back")
    assert base64.b64decode(back["data"]["password"]).decode() == password

    # a spec edit rolls out; a longer duration moves the end
    kubectl(
        "patch", "workshop", "intro-to-r", "-n", namespace, "--type=merge",
        "-p", '{"spec": {"image": "rocker/rstudio:4.4.1", "duration": "6h"}}',
    )  # fmt: skip
    wait_for(
        lambda: get("deployment", "intro-to-r", namespace),
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["image"] == "rocker/rstudio:4.4.1",
        describe="the new image rolled out",
    )
    moved = wait_for(
        lambda: workshop("intro-to-r", namespace),
        lambda o: o["status"]["observedGeneration"] == o["metadata"]["generation"]
        and o["status"]["expiresAt"] > status["expiresAt"],
        describe="expiresAt moved by the longer duration",
    )
    assert phase(moved) == "Running"

    # deleted by hand: the same ordered teardown, the claim kept
    kubectl("delete", "workshop", "intro-to-r", "-n", namespace, "--wait=false")
    wait_for(
        lambda: workshop("intro-to-r", namespace), lambda o: o is None, timeout=60, describe="Workshop gone"
    )
    for kind, name in (
        ("ingress", "intro-to-r"),
        ("service", "intro-to-r"),
        ("secret", "intro-to-r-password"),
    ):
        assert get(kind, name, namespace) is None, kind
    assert get("pvc", "intro-to-r-home", namespace) is not None


def test_two_participants_get_two_instances_and_their_claims_go_with_the_workshop(
    operator: Operator, namespace: str
) -> None:
    apply(
        {
            "apiVersion": "orchestra.io/v1",
            "kind": "Workshop",
            "metadata": {"name": "pair"},
            "spec": {
                "participants": 2,
                "ingress": {"host": "pair.example.org"},
                "storage": {"retainOnExpiry": False},
            },
        },
        namespace,
    )
    obj = wait_phase("pair", namespace, "Running")
    assert [(p["name"], p["url"], p["phase"]) for p in obj["status"]["participants"]] == [
        ("p1", "http://pair.example.org/p1/", "Running"),
        ("p2", "http://pair.example.org/p2/", "Running"),
    ]
    deployments = kubectl_json("get", "deployments", "-n", namespace, "-l", "orchestra.io/workshop=pair")[
        "items"
    ]
    assert sorted(d["metadata"]["name"] for d in deployments) == ["pair-p1", "pair-p2"]
    paths = get("ingress", "pair", namespace)["spec"]["rules"][0]["http"]["paths"]
    assert [(p["path"], p["backend"]["service"]["name"]) for p in paths] == [
        ("/p1/", "pair-p1"),
        ("/p2/", "pair-p2"),
    ]
    claims = [get("pvc", f"pair-{p}-home", namespace) for p in ("p1", "p2")]
    assert all(c["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"] for c in claims)

    kubectl("delete", "workshop", "pair", "-n", namespace, "--wait=false")
    for p in ("p1", "p2"):
        wait_for(
            lambda p=p: get("pvc", f"pair-{p}-home", namespace),
            lambda o: o is None or bool(o["metadata"].get("deletionTimestamp")),
            timeout=60,
            describe=f"the claim of {p} deleted with the workshop",
        )


def test_a_one_minute_workshop_warns_tears_down_in_order_keeps_its_claim_and_disappears(
    operator: Operator, namespace: str
) -> None:
    apply(
        {
            "apiVersion": "orchestra.io/v1",
            "kind": "Workshop",
            "metadata": {"name": "short"},
            "spec": {"duration": "1m", "expiryWarning": "40s", "terminationGracePeriodSeconds": 5},
        },
        namespace,
    )
    running = wait_phase("short", namespace, "Running")
    warned = wait_for(
        lambda: workshop("short", namespace),
        lambda o: o is not None and cond(o, "ExpiringSoon")["status"] == "True",
        timeout=60,
        describe="ExpiringSoon before the end",
    )
    assert phase(warned) == "Running" and "save your work" in cond(warned, "ExpiringSoon")["message"]
    events = kubectl_json("get", "events", "-n", namespace, "--field-selector", "involvedObject.name=short")
    assert any(e["reason"] == "ExpiringSoon" and e["type"] == "Warning" for e in events["items"])
    wait_for(
        lambda: workshop("short", namespace), lambda o: o is None, timeout=90, describe="the Workshop deleted"
    )
    assert running["status"]["expiresAt"] <= warned["status"]["expiresAt"]

    claim = get("pvc", "short-home", namespace)
    assert claim is not None and not claim["metadata"].get("ownerReferences")
    for kind in ("ingress", "service", "deployment"):
        assert get(kind, "short", namespace) is None, kind
    order = [
        m.group(1)
        for m in re.finditer(
            r"short: deleted (Ingress|Service|Deployment) \S+ \(no longer desired\)", operator.log()
        )
    ]
    assert order == ["Ingress", "Service", "Deployment"], order
    metrics = scrape(operator)
    assert metrics["troupe_workshop_expirations_total"] >= 1
    assert metrics["troupe_workshop_time_to_ready_seconds_count"] >= 1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"duration": "4 hours"}, "spec.duration"),
        ({"duration": "-1h"}, "spec.duration"),
        ({"resources": {"cpu": "lots"}}, "spec.resources.cpu"),
        ({"storage": {"size": "10 GB"}}, "spec.storage.size"),
        ({"image": ""}, "spec.image"),
        ({"participants": 2, "participantNames": ["a"]}, "participants (a count) or participantNames"),
        ({"ingress": {"tlsSecretName": "cert"}}, "tlsSecretName needs ingress.host"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_harms_nothing(
    operator: Operator, namespace: str, spec: dict[str, Any], message: str
) -> None:
    manifest = {
        "apiVersion": "orchestra.io/v1",
        "kind": "Workshop",
        "metadata": {"name": "bad"},
        "spec": spec,
    }
    proc = kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest), check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert workshop("bad", namespace) is None
    assert operator.alive


def test_examples_are_valid(cluster: str, operator: Operator, namespace: str) -> None:
    for path in sorted(Path(EXAMPLES).glob("*.yaml")):
        out = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(path)).stdout
        assert "(server dry run)" in out, path.name
