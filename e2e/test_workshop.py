"""The workshop operator on a real API server, run as its chart's ServiceAccount.

kwok makes the RStudio pods Running and Ready and binds the claims, so a workshop lives its whole life
here: Creating, Running with a URL, ExpiringSoon, Terminating in order, deleted, its claims kept.
"""

from __future__ import annotations

import base64
import re
import time
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

from troupe_workshop.plugin import WORKSHOP

pytestmark = pytest.mark.e2e

EXAMPLES = ROOT / "plugins" / "workshop" / "examples"
RELEASE = "ws"
#: Long enough for an event's batched reconcile to have run (or not) and be counted.
SETTLE = WORKSHOP.batch_window + 1.0


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


def reconciles(operator: Operator) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5) as rsp:
        text = rsp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("troupe_workshop_reconciles_total{")
    )


def quiet(operator: Operator, timeout: float = 60) -> float:
    """The reconcile count once it stays the same for longer than the workshop's batch window."""
    deadline, last = time.monotonic() + timeout, reconciles(operator)
    while time.monotonic() < deadline:
        time.sleep(SETTLE)
        now = reconciles(operator)
        if now == last:
            return now
        last = now
    raise AssertionError(f"the operator kept reconciling for {timeout:.0f} s")


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

    # What another writer takes over of what the operator applied is put back at once, not at the
    # 300 s resync: the edit makes kubectl the owner of the field, which changes the operator's apply's
    # field set (the Ingress is a child of which the workshop reads nothing else).
    kubectl(
        "patch", "ingress", "intro-to-r", "-n", namespace, "--type=merge",
        "-p", '{"spec": {"ingressClassName": "nginx"}}',
    )  # fmt: skip
    wait_for(
        lambda: get("ingress", "intro-to-r", namespace),
        lambda i: i["spec"]["ingressClassName"] == "traefik",
        timeout=20,
        describe="the operator's ingressClassName put back",
    )
    # A label of someone else's is theirs: left as it is, and no reason to reconcile.
    before = quiet(operator)
    kubectl("label", "deployment", "intro-to-r", "-n", namespace, "team=data")
    time.sleep(SETTLE)
    assert reconciles(operator) == before
    assert get("deployment", "intro-to-r", namespace)["metadata"]["labels"]["team"] == "data"

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

    # deleted by hand: garbage collection takes what it owns (the Workshop holds no finalizer: nothing
    # needs the operator then), the retained claim stays
    assert not obj["metadata"].get("finalizers")
    kubectl("delete", "workshop", "intro-to-r", "-n", namespace, "--wait=false")
    wait_for(
        lambda: workshop("intro-to-r", namespace), lambda o: o is None, timeout=60, describe="Workshop gone"
    )
    for kind, name in (
        ("ingress", "intro-to-r"),
        ("service", "intro-to-r"),
        ("deployment", "intro-to-r"),
        ("secret", "intro-to-r-password"),
    ):
        wait_for(
            lambda kind=kind, name=name: get(kind, name, namespace),
            lambda o: o is None,
            timeout=60,
            describe=f"{kind} {name} garbage-collected",
        )
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
    assert sorted(d["metadata"]["name"] for d in deployments) == ["pair--p1", "pair--p2"]
    paths = get("ingress", "pair", namespace)["spec"]["rules"][0]["http"]["paths"]
    assert [(p["path"], p["backend"]["service"]["name"]) for p in paths] == [
        ("/p1/", "pair--p1"),
        ("/p2/", "pair--p2"),
    ]
    claims = [get("pvc", f"pair--{p}-home", namespace) for p in ("p1", "p2")]
    assert all(c["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"] for c in claims)

    kubectl("delete", "workshop", "pair", "-n", namespace, "--wait=false")
    for p in ("p1", "p2"):
        wait_for(
            lambda p=p: get("pvc", f"pair--{p}-home", namespace),
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


# -- bad input: every case refused by the API server naming its field, or Failed before any child ----------

#: (name, spec, the field the API server's message names, a phrase of it). One object per case, all
#: applied in one kubectl call: kubectl goes on past each refusal and reports it under the object's name.
REFUSED: list[tuple[str, Any, str, str]] = [
    ("spec-type", "a string", "spec", "must be of type object"),
    ("duration-words", {"duration": "4 hours"}, "spec.duration", "should match"),
    ("duration-negative", {"duration": "-1h"}, "spec.duration", "should match"),
    ("duration-type", {"duration": 4}, "spec.duration", "must be of type string"),
    ("duration-huge", {"duration": "99999999999999d"}, "spec.duration", "should match"),
    ("duration-past-century", {"duration": "999999999d"}, "spec.duration", "from 1m to 36500d"),
    ("duration-zero", {"duration": "0s"}, "spec.duration", "from 1m to 36500d"),
    ("duration-tiny", {"duration": "59s999ms"}, "spec.duration", "from 1m to 36500d"),
    ("warning-huge", {"expiryWarning": "99999999999999d"}, "spec.expiryWarning", "should match"),
    ("warning-past-century", {"expiryWarning": "36500d1s"}, "spec.expiryWarning", "at most 36500d"),
    ("start-far", {"startTime": "9999-12-31T23:59:59Z"}, "spec.startTime", "years 2000 to 2199"),
    ("start-ancient", {"startTime": "0001-01-01T00:00:00Z"}, "spec.startTime", "years 2000 to 2199"),
    ("start-words", {"startTime": "tomorrow"}, "spec.startTime", "date-time"),
    ("start-type", {"startTime": 1764150000}, "spec.startTime", "date-time"),
    ("cpu-words", {"resources": {"cpu": "lots"}}, "spec.resources.cpu", "should match"),
    ("cpu-zero", {"resources": {"cpu": "0"}}, "spec.resources.cpu", "more than 0"),
    ("cpu-huge", {"resources": {"cpu": "1e999"}}, "spec.resources.cpu", "should match"),
    ("memory-negative", {"resources": {"memory": "-2Gi"}}, "spec.resources.memory", "should match"),
    ("memory-zero", {"resources": {"memory": "0.0Gi"}}, "spec.resources.memory", "more than 0"),
    ("size-words", {"storage": {"size": "10 GB"}}, "spec.storage.size", "should match"),
    ("size-zero", {"storage": {"size": "0"}}, "spec.storage.size", "more than 0"),
    ("size-huge", {"storage": {"size": "9999999999999Ei"}}, "spec.storage.size", "should match"),
    ("storage-class", {"storage": {"storageClass": "Fast SSD"}}, "spec.storage.storageClass", "should match"),
    ("retain-type", {"storage": {"retainOnExpiry": "yes"}}, "spec.storage.retainOnExpiry", "boolean"),
    ("title-long", {"name": "Statistik für Anfänger " * 3}, "spec.name", "63"),
    ("image-empty", {"image": ""}, "spec.image", "1"),
    ("image-spaces", {"image": "rocker/rstudio latest"}, "spec.image", "should match"),
    ("image-long", {"image": "r/" + "x" * 600}, "spec.image", "512"),
    ("participants-zero", {"participants": 0}, "spec.participants", "1"),
    ("participants-many", {"participants": 10_000}, "spec.participants", "100"),
    ("participants-type", {"participants": "two"}, "spec.participants", "must be of type integer"),
    ("participants-and-names", {"participants": 2, "participantNames": ["a"]}, "spec", "not both"),
    ("names-none", {"participantNames": []}, "spec.participantNames", "at least 1 items"),
    ("names-duplicate", {"participantNames": ["ada", "ada"]}, "spec.participantNames[1]", "Duplicate"),
    ("names-case", {"participantNames": ["Alice", "alice"]}, "spec.participantNames[0]", "should match"),
    ("names-dots", {"participantNames": ["a.b", "a-b"]}, "spec.participantNames[0]", "should match"),
    ("names-unicode", {"participantNames": ["zoë"]}, "spec.participantNames[0]", "should match"),
    ("names-long", {"participantNames": ["a" * 41]}, "spec.participantNames[0]", "40"),
    ("names-reserved", {"participantNames": ["rstudio"]}, "spec.participantNames[0]", "reserved"),
    ("names-many", {"participantNames": [f"p{i}" for i in range(10_000)]}, "spec.participantNames", "100"),
    ("host-ip", {"ingress": {"host": "10.0.0.1"}}, "spec.ingress.host", "not an IP address"),
    ("host-unicode", {"ingress": {"host": "wörkshop.example.org"}}, "spec.ingress.host", "should match"),
    ("host-long", {"ingress": {"host": "a" * 250 + ".org"}}, "spec.ingress.host", "253"),
    ("tls-without-host", {"ingress": {"tlsSecretName": "cert"}}, "spec", "tlsSecretName needs ingress.host"),
    (
        "annotations-many",
        {"ingress": {"annotations": {f"k{i}": "v" for i in range(65)}}},
        "spec.ingress.annotations",
        "64",
    ),
    ("grace-negative", {"terminationGracePeriodSeconds": -1}, "spec.terminationGracePeriodSeconds", "0"),
    ("grace-huge", {"terminationGracePeriodSeconds": 10**12}, "spec.terminationGracePeriodSeconds", "3600"),
]

#: (name, spec, the reason and phrases of the Ready condition): accepted by the API server, which cannot
#: see the creation time or check an annotation key, and ended Failed by the operator before any child.
FAILED: list[tuple[str, dict[str, Any], str, tuple[str, ...]]] = [
    (
        "window-ended",
        {"startTime": "2020-01-01T00:00:00Z", "duration": "1h"},
        "InvalidSpec",
        ("spec.startTime", "before the Workshop was created", "set a later spec.startTime"),
    ),
    (
        "start-next-century",
        {"startTime": "2190-01-01T00:00:00Z"},
        "InvalidSpec",
        ("spec.startTime", "more than 36500d"),
    ),
    (
        "annotation-key",
        {"ingress": {"annotations": {"not a key": "x"}}},
        "InvalidSpec",
        ("spec.ingress.annotations", "annotation key 'not a key'"),
    ),
]

CHILD_KINDS = "persistentvolumeclaims,secrets,deployments,services,ingresses"


def owned_children(namespace: str) -> dict[str, list[str]]:
    """The operator's children in ``namespace`` by owner: its owner annotation, the Workshop's name."""
    out: dict[str, list[str]] = {}
    for item in kubectl_json("get", CHILD_KINDS, "-n", namespace)["items"]:
        owner = (item["metadata"].get("annotations") or {}).get("troupe.dev/owner")
        if owner:
            out.setdefault(owner.rsplit("/", 1)[-1], []).append(f"{item['kind']} {item['metadata']['name']}")
    return out


def errors_by_name(stderr: str) -> dict[str, str]:
    """kubectl's refusals by object: 'Error from server ...: Workshop.orchestra.io "name" is invalid'."""
    out: dict[str, str] = {}
    for chunk in stderr.split("Error from server")[1:]:
        match = re.search(r'Workshop\.orchestra\.io "([^"]+)" is invalid', chunk)
        if match:
            out[match.group(1)] = chunk
    return out


def test_bad_input_corpus_is_refused_naming_the_field_or_fails_before_any_child(
    operator: Operator, namespace: str
) -> None:
    log_start = len(operator.log())
    # This tree's schema, applied again and probed: on a shared cluster another run may have applied its own.
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "charts/workshop-operator/crds"))
    probe = {"apiVersion": "orchestra.io/v1", "kind": "Workshop", "metadata": {"name": "probe"}}
    wait_for(
        lambda: kubectl(
            "create", "--dry-run=server", "-n", namespace, "-f", "-",
            input=yaml.safe_dump({**probe, "spec": {"duration": "0s"}}), check=False,
        ).returncode,
        describe="this tree's Workshop schema in force",
        timeout=30,
    )  # fmt: skip
    manifests = [
        {
            "apiVersion": "orchestra.io/v1",
            "kind": "Workshop",
            "metadata": {"name": f"bad-{name}"},
            "spec": spec,
        }
        for name, spec, *_ in [*REFUSED, *FAILED]
    ]
    # names the API server refuses before the spec is looked at
    manifests += [
        {"apiVersion": "orchestra.io/v1", "kind": "Workshop", "metadata": {"name": name}, "spec": {}}
        for name in ("x" * 254, "wörkshop", "Upper.Case", "-dash")
    ]
    proc = kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(manifests), check=False, timeout=120
    )
    assert proc.returncode != 0
    refusals = errors_by_name(proc.stderr)
    for name, _, field, phrase in REFUSED:
        message = refusals.get(f"bad-{name}", "")
        assert f"{field}:" in message and phrase in message, (name, message or proc.stderr[-3000:])
    assert proc.stderr.count("metadata.name: Invalid value") >= 4, proc.stderr[-3000:]
    accepted = {o["metadata"]["name"] for o in kubectl_json("get", "workshops", "-n", namespace)["items"]}
    assert accepted == {f"bad-{name}" for name, *_ in FAILED}, accepted

    for name, _, reason, phrases in FAILED:
        obj = wait_phase(f"bad-{name}", namespace, "Failed", timeout=30)
        ready = cond(obj, "Ready")
        assert ready["status"] == "False" and ready["reason"] == reason, (name, ready)
        assert all(p in ready["message"] for p in phrases), (name, ready["message"])
    assert owned_children(namespace) == {}  # refused before any child
    for name, *_ in FAILED:  # and deleted without leaving anything behind
        kubectl("delete", "workshop", f"bad-{name}", "-n", namespace, "--wait=true", timeout=60)
    assert kubectl_json("get", f"workshops,{CHILD_KINDS}", "-n", namespace)["items"] == []
    assert operator.alive and "Traceback" not in operator.log()[log_start:], operator.tail(80)


def test_names_that_clean_alike_get_their_own_children(operator: Operator, namespace: str) -> None:
    """team.x and team-x, single workshop w-a and participant a of w, long and digit-led names: apart."""
    long_name = "long." + "x" * 120 + ".name"
    specs: dict[str, dict[str, Any]] = {
        "team.x": {},
        "team-x": {},
        "w-a": {},
        "w": {"participantNames": ["a"]},
        "1st": {},
        long_name: {"participantNames": ["alice", "a--b"]},
    }
    apply(
        [
            {
                "apiVersion": "orchestra.io/v1",
                "kind": "Workshop",
                "metadata": {"name": n},
                "spec": {**s, "terminationGracePeriodSeconds": 2},
            }
            for n, s in specs.items()
        ],
        namespace,
    )
    objs = {n: wait_phase(n, namespace, "Running", timeout=120) for n in specs}
    children = owned_children(namespace)
    every = [child for name in specs for child in children[name]]
    assert len(every) == len(set(every)), children  # no child is counted by two workshops
    assert {name: len(kids) for name, kids in children.items()} == {
        "team.x": 5, "team-x": 5, "w-a": 5, "w": 5, "1st": 5, long_name: 9
    }  # fmt: skip
    assert sorted(children["w-a"]) == sorted(
        [
            "PersistentVolumeClaim w-a-home",
            "Secret w-a-password",
            "Deployment w-a",
            "Service w-a",
            "Ingress w-a",
        ]
    )
    assert "Deployment w--a" in children["w"] and "Service w--a" in children["w"]
    assert any(re.fullmatch(r"Service ws-1st---[0-9a-f]{8}", c) for c in children["1st"])
    for name, obj in objs.items():  # each password Secret in the status is the workshop's own
        for p in obj["status"]["participants"]:
            secret = get("secret", p["passwordSecret"], namespace)
            assert secret["metadata"]["annotations"]["troupe.dev/owner"].endswith(f"/{name}"), (name, p)

    # deleting one of a look-alike pair leaves the other whole and running
    survivor = get("deployment", "team-x", namespace)["metadata"]["uid"]
    for gone in ("team.x", "w-a"):
        kubectl("delete", "workshop", gone, "-n", namespace, "--wait=true", timeout=90)
    assert get("deployment", "team-x", namespace)["metadata"]["uid"] == survivor
    assert (
        get("deployment", "w--a", namespace) is not None and get("service", "team-x", namespace) is not None
    )
    assert phase(workshop("team-x", namespace)) == phase(workshop("w", namespace)) == "Running"
    left = owned_children(namespace)
    assert {n: kids for n, kids in left.items() if n in ("team.x", "w-a")} == {  # their claims, retained
        "team.x": [c for c in children["team.x"] if c.startswith("PersistentVolumeClaim")],
        "w-a": ["PersistentVolumeClaim w-a-home"],
    }
    assert all(sorted(left[n]) == sorted(children[n]) for n in ("team-x", "w", "1st", long_name))


def test_examples_are_valid(cluster: str, operator: Operator, namespace: str) -> None:
    for path in sorted(Path(EXAMPLES).glob("*.yaml")):
        out = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(path)).stdout
        assert "(server dry run)" in out, path.name
