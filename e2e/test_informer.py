"""The core's informer against the real API server: a paginated listing, the watch after it, a reconnect
from the last version seen, and a relisting from a compacted version with DELETED for what vanished."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from harness import create_namespace, delete_namespace, kubectl, new_namespace_name

from troupe.engine import informer as informer_module
from troupe.engine.client import Kube
from troupe.engine.health import WatchActivity
from troupe.engine.informer import Informer

pytestmark = pytest.mark.e2e

Events = list[tuple[str, str]]


@pytest.fixture
def ns(cluster: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("KUBECONFIG", cluster)
    monkeypatch.setattr(informer_module, "PAGE", 3)  # seven objects: three pages
    name = create_namespace(new_namespace_name("informer"))
    yield name
    delete_namespace(name)


def configmap(ns: str, name: str, *labels: str) -> None:
    kubectl("create", "configmap", name, "-n", ns, "--from-literal=v=1")
    if labels:
        kubectl("label", "configmap", name, "-n", ns, *labels)


async def until(test: Callable[[], bool], describe: str) -> None:
    for _ in range(400):  # 20 s
        if test():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {describe}")


async def in_thread(*args: str) -> None:
    await asyncio.to_thread(kubectl, *args)


def run(body: Callable[[Kube], Awaitable[None]]) -> None:
    async def main() -> None:
        kube = await Kube.connect(field_manager="troupe-e2e")
        try:
            await body(kube)
        finally:
            await kube.close()

    asyncio.run(main())


def make(kube: Kube, ns: str, events: Events, activity: WatchActivity | None = None) -> Informer:
    return Informer(
        kube,
        api_version="v1",
        kind="ConfigMap",
        plural="configmaps",
        namespace=ns,
        handler=lambda kind, obj: events.append((kind, obj["metadata"]["name"])),
        activity=activity,
        label_selector="e2e=informer",
    )


def test_lists_in_pages_then_watches_and_reconnects_from_the_last_version(ns: str) -> None:
    for i in range(7):
        configmap(ns, f"cm{i}", "e2e=informer")
    configmap(ns, "unlabelled")  # left out by the label selector

    async def body(kube: Kube) -> None:
        events: Events = []
        activity = WatchActivity(stale_after=60)
        informer = make(kube, ns, events, activity)
        informer.start()
        await until(lambda: activity.has_listed(f"configmaps@{ns}"), "the listing")
        assert sorted(events) == [("ADDED", f"cm{i}") for i in range(7)]
        assert activity.ready()

        await in_thread("label", "configmap", "cm0", "-n", ns, "extra=1")
        await in_thread("delete", "configmap", "cm1", "-n", ns)
        await until(lambda: ("DELETED", "cm1") in events, "the watch events")
        assert events[7:] == [("MODIFIED", "cm0"), ("DELETED", "cm1")]

        # Away for a while: the reconnect from the last version seen brings what happened meanwhile.
        await informer.stop()
        await in_thread("delete", "configmap", "cm2", "-n", ns)
        await in_thread("label", "configmap", "unlabelled", "-n", ns, "e2e=informer")
        del events[:]
        informer.start()
        await until(lambda: len(events) >= 2, "the events missed while away")
        assert events == [("DELETED", "cm2"), ("ADDED", "unlabelled")]
        await informer.stop()

    run(body)


def test_a_compacted_version_relists_and_deletes_what_vanished_while_away(ns: str) -> None:
    for i in range(4):
        configmap(ns, f"cm{i}", "e2e=informer")

    async def body(kube: Kube) -> None:
        events: Events = []
        activity = WatchActivity(stale_after=60)
        informer = make(kube, ns, events, activity)
        informer.start()
        await until(lambda: activity.has_listed(f"configmaps@{ns}"), "the listing")
        await informer.stop()
        await in_thread("delete", "configmap", "cm0", "cm3", "-n", ns)
        # Away longer than etcd keeps history: the API server answers 410 Gone for so old a version.
        informer.version = "1"
        del events[:]
        informer.start()
        await until(lambda: activity.has_listed(f"configmaps@{ns}"), "the listing again")
        assert sorted(e for e in events if e[0] == "ADDED") == [("ADDED", "cm1"), ("ADDED", "cm2")]
        assert sorted(e for e in events if e[0] == "DELETED") == [("DELETED", "cm0"), ("DELETED", "cm3")]
        assert informer.known == {(ns, "cm1"), (ns, "cm2")}
        await informer.stop()

    run(body)


def test_an_unserved_kind_is_retried_until_its_crd_is_served(ns: str, caplog: Any) -> None:
    async def body(kube: Kube) -> None:
        events: Events = []
        activity = WatchActivity(stale_after=60)
        informer = Informer(
            kube,
            api_version="e2e-informer.troupe.dev/v1",
            kind="Nothing",
            plural="nothings",
            namespace=ns,
            handler=lambda kind, obj: events.append((kind, obj["metadata"]["name"])),
            activity=activity,
        )
        informer.start()
        await asyncio.sleep(1.0)
        assert not activity.has_listed(f"nothings@{ns}") and not events
        await informer.stop()

    run(body)
    assert "not served yet" in caplog.text
