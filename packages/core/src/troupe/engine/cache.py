"""What the watch streams told us: the latest body of each object and each owner's children."""

from __future__ import annotations

import sys
from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from troupe.context import ChildKey, Children, Manifest
from troupe.engine.apply import OWNER_ANNOTATION, OWNER_UID_ANNOTATION, owner_key
from troupe.kinds import KindSpec


def _version(obj: Manifest) -> int:
    try:
        return int(obj.get("metadata", {}).get("resourceVersion", 0))
    except ValueError:  # resourceVersion is opaque; etcd-backed servers use integers
        return 0


def newer(candidate: Manifest, current: Manifest | None) -> bool:
    return current is None or _version(candidate) >= _version(current)


def unseen(candidate: Manifest, current: Manifest | None) -> bool:
    """``candidate`` is a version not seen before: not the one cached (the watch's echo of our own write,
    whose response we cached already, or a re-listing after a reconnect), nor an older one arriving late."""
    if current is None:
        return True
    version = candidate.get("metadata", {}).get("resourceVersion")
    if version == current.get("metadata", {}).get("resourceVersion"):
        return False
    return _version(candidate) > _version(current) or _version(current) == 0


#: Per-field detail of each manager's fields (``fieldsV1``) is most of an object's size and nothing the
#: core or a hook reads: the managers' names stay (a NameConflict names them).
_MANAGER_KEYS = ("manager", "operation", "subresource")
#: In a trimmed manager entry of an apply, or of the operator's own create: a digest of the fields it
#: owns (see :func:`read_change`).
APPLIED_FIELDS = "troupe.dev/appliedFields"
_HEAVY_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


#: Strings up to this long are shared between cached objects (keys, "True", "Running", image names...).
_SHARED_UP_TO = 64


def _shared(value: Any) -> Any:
    """``value`` with its keys and short strings interned: each parsed body has its own copy of every
    key ("metadata", "lastTransitionTime"...), a third of a cached object's memory; the copy is cheap."""
    if isinstance(value, dict):
        return {sys.intern(k) if isinstance(k, str) else k: _shared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shared(v) for v in value]
    if isinstance(value, str) and len(value) <= _SHARED_UP_TO:
        return sys.intern(value)
    return value


def _share_in_place(value: dict[Any, Any] | list[Any]) -> None:
    """:func:`_shared` of a body already cached, in place: equal strings swapped for their interned
    twins, nothing any reader can tell apart. Its keys came shared from the JSON decoder."""
    pairs = value.items() if isinstance(value, dict) else enumerate(value)
    for k, v in pairs:
        if type(v) is str:
            if len(v) <= _SHARED_UP_TO:
                value[k] = sys.intern(v)  # a value replaced, no key added: iterating on is safe
        elif type(v) is dict or type(v) is list:
            _share_in_place(v)


#: Bodies cached within :func:`sharing_later` whose strings are not shared yet.
_unshared: list[Manifest] = []
_deferring = False


@contextmanager
def sharing_later() -> Iterator[None]:
    """New bodies cached within are kept without sharing their strings, until :func:`share_some`.

    Sharing walks every part of a body in Python: during a restart with 1,000 Workshops, a third of
    the CPU of the listings the first reconcile waits for. An initial listing's bodies are the
    stream's own (parsed for it, read by nobody after), so their sharing can wait until the listings
    are in."""
    global _deferring
    outer, _deferring = _deferring, True
    try:
        yield
    finally:
        _deferring = outer


def share_some(count: int = 200) -> bool:
    """Share the strings of up to ``count`` bodies cached by :func:`sharing_later`; True if more wait."""
    for body in _unshared[-count:]:
        _share_in_place(body)
    del _unshared[-count:]
    return bool(_unshared)


_ABSENT = object()


def _shared_since(value: Any, before: Any) -> Any:
    """:func:`_shared` of ``value``, taking each part equal to ``before``'s (a cached, already shared
    version of the same object) from there: an event changes a status or a few fields, and comparing
    (in C) costs far less than walking the whole body again."""
    if value == before:
        return before
    if not (isinstance(value, dict) and isinstance(before, dict)):
        return _shared(value)
    kept: dict[Any, Any] = {}
    for k, v in value.items():
        old = before.get(k, _ABSENT)
        key = sys.intern(k) if isinstance(k, str) else k
        # inline, not a call per key: most keys of a new version hold what they held before
        if v == old:
            kept[key] = old
        elif isinstance(v, dict):
            kept[key] = _shared_since(v, old)
        else:
            kept[key] = _shared(v)
    return kept


def _manager(entry: Manifest, own: str | None) -> Manifest:
    kept = {k: entry[k] for k in _MANAGER_KEYS if k in entry}
    if "fieldsV1" in entry and (entry.get("operation") == "Apply" or (own and entry.get("manager") == own)):
        # what an apply (or our create) owns, as a number: it changes when another writer takes or
        # removes a field of it
        kept[APPLIED_FIELDS] = hash(orjson.dumps(entry["fieldsV1"], option=orjson.OPT_SORT_KEYS))
    return kept


def trimmed(body: Manifest, before: Manifest | None = None, own: str | None = None) -> Manifest:
    """``body`` as kept in the caches: without the field managers' field sets and kubectl's copy of the
    last applied object, which no hook reads and which doubled the memory of every cached object, and
    with its keys and short strings shared with the other cached objects. A new object: ``body`` is left
    as it was. ``before``: the cached version of the same object, whose unchanged parts are kept.
    ``own``: the operator's field manager, whose creates are digested as its applies are."""
    meta = body.get("metadata")
    if not isinstance(meta, dict):
        return dict(_shared(body))
    managed = meta.get("managedFields")
    annotations = meta.get("annotations") or {}
    heavy = [a for a in _HEAVY_ANNOTATIONS if a in annotations]
    meta = dict(meta)
    if managed:
        meta["managedFields"] = [_manager(m, own) for m in managed]
    if heavy:
        meta["annotations"] = {k: v for k, v in annotations.items() if k not in heavy}
    kept = {**body, "metadata": meta}
    if before is None and _deferring:
        _unshared.append(kept)
        return kept
    return dict(_shared(kept) if before is None else _shared_since(kept, before))


def version_of(body: Manifest) -> str:
    return str(body.get("metadata", {}).get("resourceVersion", ""))


class OwnWrites:
    """The versions our own last writes of each object produced.

    The watch may bring a write of ours back before its response did (two connections): while the
    object's reconcile still runs, such an event looks new. Once the run is over, its version is here,
    and it needs no rerun.
    """

    KEEP = 4  # the writes of one reconcile: a finalizer, children, a status

    def __init__(self) -> None:
        self._versions: dict[Any, list[str]] = {}

    def add(self, key: Any, body: Manifest) -> None:
        versions = self._versions.setdefault(key, [])
        versions.append(version_of(body))
        del versions[: -self.KEEP]

    def __contains__(self, item: tuple[Any, str]) -> bool:
        key, version = item
        return version in self._versions.get(key, ())

    def forget(self, key: Any) -> None:
        self._versions.pop(key, None)


class ObjectCache:
    """Latest known body per key, never replaced by an older version arriving late."""

    def __init__(self) -> None:
        self._objects: dict[Any, Manifest] = {}
        self.ours = OwnWrites()

    def put(self, key: Any, body: Manifest, *, ours: bool = False) -> bool:
        """Keep ``body`` unless an as new one is cached; True when it is a version not seen before.
        ``ours``: the response to a write of ours."""
        current = self._objects.get(key)
        if newer(body, current):
            self._objects[key] = trimmed(body, current)
        if ours:
            self.ours.add(key, body)
        return unseen(body, current)

    def pop(self, key: Any) -> None:
        self._objects.pop(key, None)
        self.ours.forget(key)

    def get(self, key: Any) -> Manifest | None:
        return self._objects.get(key)

    def items(self) -> list[tuple[Any, Manifest]]:
        return list(self._objects.items())


#: Metadata that changes with every write: no news in itself.
_BOOKKEEPING = ("resourceVersion", "managedFields")


def same_but_status(before: Manifest, after: Manifest) -> bool:
    """Do two versions of an object differ in nothing but their status (and bookkeeping)?"""

    def rest(body: Manifest) -> Manifest:
        meta = {k: v for k, v in (body.get("metadata") or {}).items() if k not in _BOOKKEEPING}
        return {**{k: v for k, v in body.items() if k != "status"}, "metadata": meta}

    return rest(before) == rest(after)


def read_at(body: Manifest, path: tuple[str, ...]) -> Any:
    """The value at a dotted path of :attr:`ChildKind.reads`: a list is entered by the ``type`` or
    ``name`` of its items (``status.conditions.Ready.status``, ``status.containerStatuses.rstudio``),
    the keys Kubernetes merges such lists by."""
    value: Any = body
    for part in path:
        if isinstance(value, list):
            value = next(
                (v for v in value if isinstance(v, dict) and part in (v.get("type"), v.get("name"))), None
            )
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def _applied(body: Manifest) -> list[tuple[Any, Any]]:
    """Each apply's manager (and the operator's, for what it created) and the digest of the fields it
    owns. The operation is left out: the create's entry made the apply's (``as_applied``) is no change."""
    managed = (body.get("metadata") or {}).get("managedFields") or []
    return [(m.get("manager"), m[APPLIED_FIELDS]) for m in managed if APPLIED_FIELDS in m]


def read_change(before: Manifest, after: Manifest, reads: tuple[tuple[str, ...], ...]) -> bool:
    """Does ``after`` differ from ``before`` in what the owner's hooks read (``reads``), in what was
    applied to it, or by its deletion starting?

    What was applied is judged the way server-side apply does, by the fields each apply owns: another
    writer changing or removing one of them takes it over, which changes that apply's field set. Other
    controllers' own fields (a claim's ``spec.volumeName``, a pod's ``spec.nodeName``, a Deployment's
    revision annotation) and bookkeeping (``resourceVersion``) are theirs: re-applying would not touch
    them, so they are no drift.
    """
    return (
        (before.get("metadata") or {}).get("deletionTimestamp")
        != (after.get("metadata") or {}).get("deletionTimestamp")
        or _applied(before) != _applied(after)
        or any(read_at(before, path) != read_at(after, path) for path in reads)
    )


class ChildIndex:
    """Children by owner (the ``troupe.dev/owner`` annotation), then by :class:`ChildKey`.

    A child belongs to one owner at a time: an event that names another owner than before moves it.
    ``kinds``: the owner kinds, whose :attr:`ChildKind.reads` tell which changes of a child concern its
    owner. ``own_manager``: the operator's field manager, whose creates count as its applies do.
    """

    def __init__(self, kinds: Iterable[KindSpec] = (), own_manager: str | None = None) -> None:
        self._by_owner: dict[str, dict[ChildKey, Manifest]] = {}
        self.own_manager = own_manager
        self._owner_of: dict[ChildKey, str] = {}
        self.ours = OwnWrites()
        #: (owner kind as in the owner annotation, child group, child kind) -> the paths it reads
        self._reads: dict[tuple[str, str, str], tuple[tuple[str, ...], ...]] = {
            (f"{kind.kind}.{kind.group}", child.group, child.kind): tuple(
                tuple(path.split(".")) for path in child.reads
            )
            for kind in kinds
            for child in kind.children
            if child.reads is not None
        }

    @staticmethod
    def owner_of(child: Manifest) -> str | None:
        annotations = child.get("metadata", {}).get("annotations") or {}
        owner = annotations.get(OWNER_ANNOTATION)
        return str(owner) if owner else None

    def put(self, child: Manifest, *, ours: bool = False) -> set[str]:
        """Record ``child``; returns the owners whose children changed (the old one too, on a move).

        A version seen before (the echo of our own apply, whose response is recorded already) or older
        than the one recorded changes nothing. ``ours``: the response to an apply of ours.
        """
        changed = self._put(ChildKey.of(child), child)
        if ours:
            self.ours.add(ChildKey.of(child), child)
        return changed

    def _put(self, key: ChildKey, child: Manifest) -> set[str]:
        owner = self.owner_of(child)
        before = self._owner_of.get(key)
        current = self._by_owner.get(before, {}).get(key) if before is not None else None
        if not unseen(child, current):
            return set()
        if before is not None and before != owner:
            self._drop(before, key)
        if owner is None:
            return {before} if before else set()
        kept = trimmed(child, current, self.own_manager)
        self._by_owner.setdefault(owner, {})[key] = kept
        self._owner_of[key] = owner
        if before == owner and current is not None and not self.concerns(owner, key, current, kept):
            return set()  # recorded: the next reconcile sees it, but nothing it reads has changed
        return {o for o in (before, owner) if o}

    def concerns(self, owner: str, key: ChildKey, before: Manifest, after: Manifest) -> bool:
        """Does a new version of ``owner``'s child change anything its kind declares it reads (anything
        at all, for a kind that declares no :attr:`ChildKind.reads`)?"""
        reads = self._reads.get((owner.split("/", 1)[0], key.group, key.kind))
        return reads is None or read_change(before, after, reads)

    def remove(self, child: Manifest) -> str | None:
        key = ChildKey.of(child)
        owner = self._owner_of.get(key)
        if owner is not None:
            self._drop(owner, key)
        return owner

    def _drop(self, owner: str, key: ChildKey) -> None:
        self._by_owner.get(owner, {}).pop(key, None)
        self._owner_of.pop(key, None)
        self.ours.forget(key)

    def find(self, key: ChildKey) -> Manifest | None:
        """The child at ``key``, whoever it belongs to."""
        owner = self._owner_of.get(key)
        return self._by_owner.get(owner, {}).get(key) if owner else None

    def children(self, owner: str, uid: str) -> Children:
        """``owner``'s children, leaving out those whose uid annotation names another object of that name."""
        return Children(
            {
                key: child
                for key, child in self._by_owner.get(owner, {}).items()
                if ((child["metadata"].get("annotations") or {}).get(OWNER_UID_ANNOTATION) or uid) == uid
            }
        )

    def forget(self, owner: str) -> None:
        for key in self._by_owner.pop(owner, {}):
            self._owner_of.pop(key, None)
            self.ours.forget(key)


class RelatedIndex:
    """Related objects (read, not owned) and who depends on them: the reverse index of references.

    A user is an object of a kind this process reconciles; it references the related objects its kind's
    :attr:`RelatedKind.references` name. Who references an object (its referrers) is known whether the
    object exists or not, and whether its kind is a related kind only or one this process reconciles too.
    """

    def __init__(self) -> None:
        self._objects: dict[ChildKey, Manifest] = {}
        self._uses: dict[Hashable, set[ChildKey]] = {}
        self._users: dict[ChildKey, set[Hashable]] = {}

    def put(self, obj: Manifest) -> set[Hashable]:
        """Record a related object; returns its dependents."""
        key = ChildKey.of(obj)
        current = self._objects.get(key)
        if not unseen(obj, current):
            return set()
        self._objects[key] = trimmed(obj, current)
        return set(self._users.get(key, ()))

    def remove(self, obj: Manifest) -> set[Hashable]:
        key = ChildKey.of(obj)
        self._objects.pop(key, None)
        return set(self._users.get(key, ()))

    def track(self, user: Hashable, uses: set[ChildKey]) -> set[ChildKey]:
        """``user`` now references exactly ``uses``; returns the objects whose referrers changed."""
        before = self._uses.get(user, set())
        for key in before - uses:
            users = self._users.get(key, set())
            users.discard(user)
            if not users:
                self._users.pop(key, None)
        for key in uses:
            self._users.setdefault(key, set()).add(user)
        self._uses[user] = uses
        return before ^ uses

    def forget(self, user: Hashable) -> set[ChildKey]:
        """``user`` is gone; returns the objects it referenced (their referrers changed)."""
        changed = self.track(user, set())
        self._uses.pop(user, None)
        return changed

    def uses(self, user: Hashable) -> set[ChildKey]:
        return set(self._uses.get(user, ()))

    def users(self, keys: Iterable[ChildKey]) -> set[Hashable]:
        return {user for key in keys for user in self._users.get(key, ())}

    def view(self, user: Hashable) -> Children:
        """The related objects ``user`` references that exist."""
        return Children({key: self._objects[key] for key in self._uses.get(user, ()) if key in self._objects})


@dataclass(frozen=True)
class ObjectKey:
    kind: KindSpec
    namespace: str | None
    name: str

    def __hash__(self) -> int:
        # Every queue and cache lookup hashes a key: the generated hash would hash the whole KindSpec
        # (its models, children, columns...) each time. Equal keys have equal kinds, so equal names too.
        return hash((self.kind.plural, self.kind.group, self.namespace, self.name))

    @property
    def owner(self) -> str:
        return owner_key(self.kind, self.namespace, self.name)

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind.kind} {where}{self.name}"
