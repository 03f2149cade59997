"""An in-memory stand-in for the core's API client, for unit tests of the reconcile path.

Pure units only: anything that depends on how Kubernetes behaves is tested against a real API server.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from troupe.context import Children
from troupe.engine.apply import OWNER_ANNOTATION, owner_key
from troupe.engine.cache import ChildIndex
from troupe.engine.client import ApiException, NotFound
from troupe.engine.status import apply_merge_patch
from troupe.kinds import KindSpec

if TYPE_CHECKING:
    from troupe.engine.cache import ObjectKey
    from troupe.engine.reconcile import Reconciler

Manifest = dict[str, Any]
#: One write of another writer: ``(path, value)``, the path a tuple of keys (an annotation's key is one).
Write = tuple[tuple[str, ...], Any]


class MemoryKube:
    """Just enough of troupe.engine.client.Kube: stores objects, counts writes, bumps resourceVersion."""

    field_manager = "troupe-example"

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str | None, str], Manifest] = {}
        self.writes: list[str] = []
        self.version = 100
        self.refuse: ApiException | None = None
        self.bodies: list[Any] = []
        self.status_patches: list[Manifest] = []

    def _bump(self, obj: Manifest) -> Manifest:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(obj)

    async def get(self, api_version: str, plural: str, namespace: str | None, name: str) -> Manifest | None:
        obj = self.objects.get((plural, namespace, name))
        return copy.deepcopy(obj) if obj else None

    async def create(self, manifest: Manifest, plural: str, namespace: str | None) -> Manifest:
        if self.refuse is not None:
            raise self.refuse
        key = (plural, namespace, manifest["metadata"]["name"])
        if key in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        self.writes.append(f"create {manifest['kind']}/{manifest['metadata']['name']}")
        return self._store(key, manifest, "Update")

    async def apply(
        self, manifest: Manifest, plural: str, namespace: str | None, *, force: bool = False
    ) -> Manifest:
        if self.refuse is not None:
            raise self.refuse
        key = (plural, namespace, manifest["metadata"]["name"])
        existing = self.objects.get(key)
        managers = {m["manager"] for m in (existing or {}).get("metadata", {}).get("managedFields", [])}
        if existing is not None and not force and managers - {self.field_manager}:
            raise ApiException(status=409, reason="Conflict")  # another manager's fields (simplified)
        self.writes.append(f"apply {manifest['kind']}/{manifest['metadata']['name']}")
        return self._store(key, manifest, "Apply")

    def _store(self, key: tuple[str, str | None, str], manifest: Manifest, operation: str) -> Manifest:
        stored = copy.deepcopy(manifest)
        stored["metadata"]["uid"] = "child-uid"
        stored["metadata"]["managedFields"] = [{"manager": self.field_manager, "operation": operation}]
        self.objects[key] = stored
        return self._bump(stored)

    async def patch_status(
        self, api_version: str, plural: str, namespace: str | None, name: str, patch: Manifest
    ) -> Manifest:
        self.writes.append(f"status {name}")
        if (plural, namespace, name) not in self.objects:
            raise NotFound(name)
        self.status_patches.append(copy.deepcopy(patch))
        obj = self.objects[plural, namespace, name]
        obj["status"] = apply_merge_patch(obj.get("status") or {}, patch)
        return self._bump(obj)

    async def delete(self, api_version: str, plural: str, namespace: str | None, name: str, **_: Any) -> bool:
        self.writes.append(f"delete {plural}/{name}")
        return self.objects.pop((plural, namespace, name), None) is not None

    async def request(self, method: str, path: str, *, body: Any = None, **_: Any) -> Manifest:
        self.writes.append(f"{method} {path}")
        self.bodies.append(body)
        return {}

    async def json_patch(
        self, api_version: str, plural: str, namespace: str | None, name: str, ops: list[Manifest]
    ) -> Manifest:
        """Enough of RFC 6902 for finalizers and field managers: test, add (``-`` appends), replace and
        remove on a path."""
        obj = self.objects.get((plural, namespace, name))
        if obj is None:
            raise NotFound(name)
        for op in ops:
            *parents, last = op["path"].strip("/").split("/")
            target: Any = obj
            for part in parents:
                target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
            if op["op"] == "test":
                current = target[int(last)] if isinstance(target, list) else target.get(last)
                if current != op["value"]:
                    raise ApiException(status=422, reason="test failed")
            elif op["op"] == "add" and isinstance(target, list):
                target.append(op["value"]) if last == "-" else target.insert(int(last), op["value"])
            elif op["op"] in ("add", "replace"):
                target[int(last) if isinstance(target, list) else last] = op["value"]
            else:
                del target[int(last) if isinstance(target, list) else last]
        self.writes.append(f"json-patch {plural}/{name}")
        return self._bump(obj)


async def reconcile(reconciler: Reconciler, key: ObjectKey) -> float | None:
    """One reconcile, then the status write it queued: what a unit test reads after a reconcile.

    The operator writes status in the background, off the reconcile's path (``StatusWriter``).
    """
    delay = await reconciler.reconcile(key)
    await reconciler.reporter.settled(key)
    return delay


def reconciles_owner(kind: KindSpec, before: Manifest, after: Manifest) -> bool:
    """Would a watch event that changes a child of an object of ``kind`` from ``before`` to ``after``
    reconcile that object? For a plugin's test that its :attr:`ChildKind.reads` cover what its hooks read."""
    owner = owner_key(kind, "ns", "owner")
    index = ChildIndex([kind])
    versions = []
    for version, child in enumerate((before, after), start=1):
        child = copy.deepcopy(child)
        meta = child.setdefault("metadata", {})
        meta.update(namespace="ns", resourceVersion=str(version))
        meta["annotations"] = {**(meta.get("annotations") or {}), OWNER_ANNOTATION: owner}
        versions.append(index.put(child))
    return owner in versions[1]


def written(child: Manifest, *writes: Write) -> Manifest:
    """A copy of ``child`` after another writer's ``writes``: each sets its value at its path, parents made
    as needed; a path ending in ``"+"`` appends the value to the list there (a condition among others).

    For a plugin's test of what other controllers write into its children (with :func:`reconciles_owner`)."""
    child = copy.deepcopy(child)
    for path, value in writes:
        *parents, last = path
        target = child
        for part in parents[:-1] if last == "+" else parents:
            target = target.setdefault(part, {})
        if last == "+":
            target.setdefault(parents[-1], []).append(value)
        else:
            target[last] = value
    return child


def written_by_others(observed: Children, writes: Mapping[str, Sequence[Write]]) -> Children:
    """Each of ``observed`` after the ``writes`` other controllers make into its kind (``writes`` by kind)."""
    return Children({key: written(child, *writes.get(child["kind"], ())) for key, child in observed.items()})
