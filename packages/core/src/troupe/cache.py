"""What the watch streams told us: the latest body of each object and each owner's children."""

from __future__ import annotations

from typing import Any

from troupe.apply import OWNER_ANNOTATION, child_identity
from troupe.context import Children, Manifest


def _version(obj: Manifest) -> int:
    try:
        return int(obj.get("metadata", {}).get("resourceVersion", 0))
    except ValueError:  # resourceVersion is opaque; etcd-backed servers use integers
        return 0


def newer(candidate: Manifest, current: Manifest | None) -> bool:
    return current is None or _version(candidate) >= _version(current)


class ObjectCache:
    """Latest known body per key, never replaced by an older version arriving late."""

    def __init__(self) -> None:
        self._objects: dict[Any, Manifest] = {}

    def put(self, key: Any, body: Manifest) -> None:
        if newer(body, self._objects.get(key)):
            self._objects[key] = body

    def pop(self, key: Any) -> None:
        self._objects.pop(key, None)

    def get(self, key: Any) -> Manifest | None:
        return self._objects.get(key)

    def items(self) -> list[tuple[Any, Manifest]]:
        return list(self._objects.items())


class ChildIndex:
    """Children by owner (the ``troupe.dev/owner`` annotation), then by (kind, name)."""

    def __init__(self) -> None:
        self._by_owner: dict[str, dict[tuple[str, str], Manifest]] = {}

    @staticmethod
    def owner_of(child: Manifest) -> str | None:
        annotations = child.get("metadata", {}).get("annotations") or {}
        owner = annotations.get(OWNER_ANNOTATION)
        return str(owner) if owner else None

    def put(self, child: Manifest) -> str | None:
        owner = self.owner_of(child)
        if owner is None:
            return None
        children = self._by_owner.setdefault(owner, {})
        key = child_identity(child)
        if newer(child, children.get(key)):
            children[key] = child
        return owner

    def remove(self, child: Manifest) -> str | None:
        owner = self.owner_of(child)
        if owner is not None:
            self._by_owner.get(owner, {}).pop(child_identity(child), None)
        return owner

    def get(self, owner: str, identity: tuple[str, str]) -> Manifest | None:
        return self._by_owner.get(owner, {}).get(identity)

    def children(self, owner: str) -> Children:
        return Children(self._by_owner.get(owner, {}))

    def forget(self, owner: str) -> None:
        self._by_owner.pop(owner, None)
