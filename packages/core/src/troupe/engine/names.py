"""Which names of the child kinds are taken, by anyone: what lets a new child be created without a GET."""

from __future__ import annotations

from collections.abc import Iterable

from troupe.context import ChildKey, Manifest


class NameIndex:
    """The names of every object of the child kinds that the watches have shown, whoever holds them.

    The child index keeps only objects with our managed-by label; a user's object of the same name is
    known here alone, which is why the streams of child kinds are not filtered by that label. A name
    absent here (once the kind's listing has arrived) is free as far as the watch can tell, so a new
    child is created without asking the API server first; the create carries a precondition that fails
    on any object of that name (one made in between), so a stale answer costs a 409, never a write into
    someone else's object. Relying on a complete index matters: without it, one child of an owner could
    be created before another's name is found held (a Deployment started on a user's claim).
    """

    def __init__(self, kinds: Iterable[tuple[str, str]]) -> None:
        #: (group, kind) of the child kinds; other kinds' events are not recorded.
        self.kinds = frozenset(kinds)
        self._taken: set[ChildKey] = set()

    def record(self, event: str, obj: Manifest) -> None:
        """Record a watch event (``ADDED``, ``MODIFIED`` or ``DELETED``) of an object of any kind."""
        key = ChildKey.of(obj)
        if (key.group, key.kind) not in self.kinds:
            return
        if event == "DELETED":
            self._taken.discard(key)
        else:
            self._taken.add(key)

    def tracks(self, key: ChildKey) -> bool:
        return (key.group, key.kind) in self.kinds

    def taken(self, key: ChildKey) -> bool:
        return key in self._taken
