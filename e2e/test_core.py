"""The core against a real API server: generated CRDs, and the example operator's whole life.

The operator runs in-process here (the plugin operators' tests run theirs as their chart's
ServiceAccount) so the test can read its write counters and prove the zero-write steady state.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from troupe.crd import build_crd
from troupe.engine.client import ApiException, Kube
from troupe.engine.runtime import HandlerRegistry, RunSettings, run
from troupe.plugins import get_plugin_manager
from troupe_example import greeting

pytestmark = pytest.mark.e2e

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
API = "example.troupe.dev/v1alpha1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def eventually(probe: Callable[[], Any], what: str, within: float = 30.0, interval: float = 0.2) -> Any:
    """Poll ``probe`` (sync or async) until it gives something truthy; fail with the last value seen."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    pytest.fail(f"timed out after {within}s waiting for {what}; last seen: {last!r}")


async def greeting_gone(kube: Kube, namespace: str, name: str, what: str) -> None:
    """Wait until the Greeting ``name`` is no longer on the API server (its finalizer released)."""

    async def gone() -> bool:
        return await kube.get(API, "greetings", namespace, name) is None

    await eventually(gone, what)


@pytest.fixture
async def kube(cluster: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Kube]:
    monkeypatch.setenv("KUBECONFIG", cluster)
    client = await Kube.connect(field_manager="troupe-e2e")
    yield client
    await client.close()


@pytest.fixture
async def greeting_crd(kube: Kube) -> AsyncIterator[None]:
    crd = build_crd(greeting.GREETING)
    await kube.request(
        "PATCH",
        f"{CRD_PATH}/{crd['metadata']['name']}",
        body=crd,
        query={"fieldManager": "troupe-e2e", "force": "true"},
        content_type="application/apply-patch+yaml",
    )

    async def established() -> bool:
        got = await kube.request("GET", f"{CRD_PATH}/{crd['metadata']['name']}")
        # a CRD just created may have no conditions yet (null)
        conds = {c["type"]: c["status"] for c in (got.get("status") or {}).get("conditions") or []}
        return conds.get("Established") == "True"

    await eventually(established, "the Greeting CRD to be Established")
    yield


@pytest.fixture
async def operator(kube: Kube, greeting_crd: None, namespace: str) -> AsyncIterator[HandlerRegistry]:
    stop = asyncio.Event()
    started: list[HandlerRegistry] = []
    settings = RunSettings(
        operators=["example"], namespaces=[namespace], standalone=True, metrics_port=free_port()
    )
    task = asyncio.create_task(run(get_plugin_manager(), settings, stop_flag=stop, ready=started.append))
    await eventually(lambda: started, "the operator to start")
    yield started[0]
    stop.set()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 30)


async def edit(kube: Kube, path: str, patch: dict[str, Any]) -> None:
    """What a user's `kubectl patch --type merge` does."""
    await kube.request("PATCH", path, body=patch, content_type="application/merge-patch+json")


def writes(registry: HandlerRegistry) -> float:
    return sum(
        sample.value
        for metric in registry.metrics["example"].writes.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


async def test_crd_with_nested_lists_enums_defaults_maps_and_cel_is_served(
    kube: Kube, greeting_crd: None, namespace: str
) -> None:
    body = {"apiVersion": API, "kind": "Greeting", "metadata": {"name": "defaults"}, "spec": {"name": "Ada"}}
    created = await kube.request("POST", f"/apis/{API}/namespaces/{namespace}/greetings", body=body)
    assert created["spec"] == {  # defaults filled in by the API server, nested ones too
        "name": "Ada",
        "message": "Hello",
        "delivery": {"channel": "configmap", "repeat": 1},
    }

    bad = {**body, "metadata": {"name": "cel"}, "spec": {"name": "Hello", "message": "Hello"}}
    with pytest.raises(ApiException) as err:
        await kube.request("POST", f"/apis/{API}/namespaces/{namespace}/greetings", body=bad)
    assert err.value.status == 422 and "name and message must differ" in err.value.body

    enum = {**body, "metadata": {"name": "enum"}, "spec": {"name": "Ada", "delivery": {"channel": "pigeon"}}}
    with pytest.raises(ApiException) as err:
        await kube.request("POST", f"/apis/{API}/namespaces/{namespace}/greetings", body=enum)
    assert err.value.status == 422 and "pigeon" in err.value.body


async def test_example_operator_lifecycle(kube: Kube, operator: HandlerRegistry, namespace: str) -> None:
    base = f"/apis/{API}/namespaces/{namespace}/greetings"
    cm_path = f"/api/v1/namespaces/{namespace}/configmaps/hi-greeting"
    body = {"apiVersion": API, "kind": "Greeting", "metadata": {"name": "hi"}, "spec": {"name": "Ada"}}
    await kube.request("POST", base, body=body)

    async def ready() -> dict[str, Any] | None:
        obj = await kube.request("GET", f"{base}/hi")
        return obj if obj.get("status", {}).get("phase") == "Ready" else None

    obj = await eventually(ready, "Greeting hi to be Ready")
    assert obj["status"]["configMap"] == "hi-greeting"
    assert obj["status"]["observedGeneration"] == 1
    assert obj["metadata"]["finalizers"] == ["example.troupe.dev/finalizer"]
    cm = await kube.request("GET", cm_path)
    assert cm["data"] == {"greeting": "Hello, Ada!"}
    assert cm["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "troupe-example"
    assert cm["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    managers = {m["manager"] for m in cm["metadata"]["managedFields"]}
    assert managers == {"troupe-example"}

    # Zero-write steady state: nothing changes, nothing is written, even across a resync.
    await asyncio.sleep(2)
    before = writes(operator), obj["metadata"]["resourceVersion"], cm["metadata"]["resourceVersion"]
    for key, _ in operator.reconciler.objects.items():
        operator.queue.enqueue(key)
    await asyncio.sleep(3)
    obj = await kube.request("GET", f"{base}/hi")
    cm = await kube.request("GET", cm_path)
    assert (writes(operator), obj["metadata"]["resourceVersion"], cm["metadata"]["resourceVersion"]) == before

    # A deleted child is put back; a spec edit rolls out.
    await kube.request("DELETE", cm_path)
    await eventually(lambda: kube.get("v1", "configmaps", namespace, "hi-greeting"), "the ConfigMap back")
    await edit(kube, f"{base}/hi", {"spec": {"message": "Welcome"}})

    async def rolled_out() -> bool:
        got = await kube.get("v1", "configmaps", namespace, "hi-greeting")
        return bool(got and got["data"]["greeting"] == "Welcome, Ada!")

    await eventually(rolled_out, "the edited message in the ConfigMap")

    # A spec the operator refuses ends Failed with a condition saying what to fix; nothing is deleted.
    await edit(kube, f"{base}/hi", {"spec": {"name": "nobody"}})

    async def failed() -> dict[str, Any] | None:
        got = await kube.request("GET", f"{base}/hi")
        return got if got.get("status", {}).get("phase") == "Failed" else None

    obj = await eventually(failed, "Greeting hi to be Failed")
    ready_cond = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert ready_cond["reason"] == "InvalidSpec" and "deny list" in ready_cond["message"]
    assert await kube.get("v1", "configmaps", namespace, "hi-greeting") is not None
    events = await kube.request("GET", f"/api/v1/namespaces/{namespace}/events")
    assert any(e["reason"] == "InvalidSpec" and e["type"] == "Warning" for e in events["items"])

    # Deletion runs the finalizer hook, and garbage collection takes the child.
    await kube.request("DELETE", f"{base}/hi")
    await eventually(lambda: "hi" in greeting.FINALIZED, "troupe_finalize to be called")

    await greeting_gone(kube, namespace, "hi", "Greeting hi to be deleted")

    async def collected() -> bool:
        return await kube.get("v1", "configmaps", namespace, "hi-greeting") is None

    await eventually(collected, "garbage collection of the ConfigMap", 60)


async def test_what_a_builder_stops_setting_goes_with_the_next_apply(
    kube: Kube, operator: HandlerRegistry, namespace: str
) -> None:
    """A child is created by a POST, which records its fields as an Update of ours; before the first
    apply they become the apply's, so the apply removes what the builder no longer sets."""
    base = f"/apis/{API}/namespaces/{namespace}/greetings"
    cm_path = f"/api/v1/namespaces/{namespace}/configmaps/hi-greeting"
    spec = {"name": "Ada", "extra": {"a": "1", "b": "2"}}
    await kube.request(
        "POST", base, body={"apiVersion": API, "kind": "Greeting", "metadata": {"name": "hi"}, "spec": spec}
    )

    def entries(cm: dict[str, Any]) -> list[tuple[str, str]]:
        return [(m["manager"], m["operation"]) for m in cm["metadata"]["managedFields"]]

    cm = await eventually(lambda: kube.get("v1", "configmaps", namespace, "hi-greeting"), "the ConfigMap")
    assert cm["data"] == {"greeting": "Hello, Ada!", "a": "1", "b": "2"}
    assert entries(cm) == [("troupe-example", "Update")]  # created, not applied

    await edit(kube, f"{base}/hi", {"spec": {"message": "Welcome", "extra": {"b": None}}})

    async def rolled_out() -> dict[str, Any] | None:
        got = await kube.request("GET", cm_path)
        return got if got["data"]["greeting"] == "Welcome, Ada!" else None

    cm = await eventually(rolled_out, "the edited message in the ConfigMap")
    assert cm["data"] == {"greeting": "Welcome, Ada!", "a": "1"}  # b, set by the create, is gone
    assert entries(cm) == [("troupe-example", "Apply")]

    await kube.request("DELETE", f"{base}/hi")  # its finalizer is released while the operator runs

    await greeting_gone(kube, namespace, "hi", "Greeting hi to be deleted")


async def test_a_spec_of_300_kb_is_stored_and_reconciled(
    kube: Kube, operator: HandlerRegistry, namespace: str
) -> None:
    """kopf kept a copy of the spec in an annotation (256 KiB at most); the core keeps none."""
    base = f"/apis/{API}/namespaces/{namespace}/greetings"
    extra = {f"line-{i:04d}": "x" * 290 for i in range(1000)}  # about 300 KB
    body = {
        "apiVersion": API,
        "kind": "Greeting",
        "metadata": {"name": "big"},
        "spec": {"name": "Ada", "extra": extra},
    }
    await kube.request("POST", base, body=body)

    async def ready() -> dict[str, Any] | None:
        obj = await kube.request("GET", f"{base}/big")
        return obj if obj.get("status", {}).get("phase") == "Ready" else None

    obj = await eventually(ready, "the 300 KB Greeting to be Ready")
    assert not any("kopf" in key for key in obj["metadata"].get("annotations") or {})
    cm = await kube.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/big-greeting")
    assert len(cm["data"]) == 1001

    # Deleted while the operator runs, so its finalizer goes (the namespace stayed Terminating otherwise).
    await kube.request("DELETE", f"{base}/big")

    await greeting_gone(kube, namespace, "big", "Greeting big to be deleted")


async def test_a_selector_takes_only_the_objects_labelled_for_it(
    kube: Kube, greeting_crd: None, namespace: str
) -> None:
    """``troupe run --selector``: another installation's objects (no label, or another value) are never
    reconciled; an object labelled later is taken, and one taken before is released properly on delete."""
    stop = asyncio.Event()
    started: list[HandlerRegistry] = []
    settings = RunSettings(
        operators=["example"],
        namespaces=[namespace],
        standalone=True,
        metrics_port=free_port(),
        selector="troupe.dev/e2e=mine",
    )
    task = asyncio.create_task(run(get_plugin_manager(), settings, stop_flag=stop, ready=started.append))
    base = f"/apis/{API}/namespaces/{namespace}/greetings"

    def greeting_of(name: str, labels: dict[str, str]) -> dict[str, Any]:
        meta = {"name": name, "labels": labels}
        return {"apiVersion": API, "kind": "Greeting", "metadata": meta, "spec": {"name": "Ada"}}

    async def phase(name: str) -> str | None:
        return (await kube.request("GET", f"{base}/{name}")).get("status", {}).get("phase")

    try:
        await eventually(lambda: started, "the operator to start")
        await kube.request("POST", base, body=greeting_of("mine", {"troupe.dev/e2e": "mine"}))
        await kube.request("POST", base, body=greeting_of("theirs", {"troupe.dev/e2e": "theirs"}))
        await kube.request("POST", base, body=greeting_of("nobodys", {}))
        await eventually(lambda: phase("mine"), "Greeting mine to get a phase")
        await asyncio.sleep(2)
        for name in ("theirs", "nobodys"):
            got = await kube.request("GET", f"{base}/{name}")
            assert "status" not in got and not got["metadata"].get("finalizers"), got
            assert await kube.get("v1", "configmaps", namespace, f"{name}-greeting") is None

        # labelled later: taken
        await edit(kube, f"{base}/nobodys", {"metadata": {"labels": {"troupe.dev/e2e": "mine"}}})
        await eventually(lambda: phase("nobodys"), "Greeting nobodys to be taken once labelled")

        # unlabelled after it was taken: left alone, but its deletion still runs our finalizer
        await edit(kube, f"{base}/mine", {"metadata": {"labels": {"troupe.dev/e2e": None}}})
        await asyncio.sleep(1)
        await kube.request("DELETE", f"{base}/mine")

        await greeting_gone(
            kube, namespace, "mine", "Greeting mine, no longer selected, to be released and deleted"
        )

        # taken: its finalizer is released while the operator runs (else its namespace never goes)
        await kube.request("DELETE", f"{base}/nobodys")

        await greeting_gone(kube, namespace, "nobodys", "Greeting nobodys to be deleted")
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
        with contextlib.suppress(ApiException):
            await kube.request("DELETE", f"{base}/theirs")
