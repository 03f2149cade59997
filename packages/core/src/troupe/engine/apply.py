"""Pure helpers of the apply step: completing a built manifest, and deciding whether it needs a write."""

from __future__ import annotations

from typing import Any

from troupe.context import Manifest
from troupe.kinds import ChildKind, KindSpec
from troupe.naming import standard_labels

#: Annotation on every child naming its owner as ``Kind.group/namespace/name``; it maps a child event
#: to the owner even where an owner reference cannot (a cluster-scoped child of a namespaced owner).
OWNER_ANNOTATION = "troupe.dev/owner"
#: A builder sets this annotation to "true" on a child that must outlive its owner (a PersistentVolumeClaim
#: kept after the workshop ends): the child gets no owner reference, so garbage collection never takes
#: it, and one it had is released. The owner annotation still ties it to its owner for the watch.
RETAIN_ANNOTATION = "troupe.dev/retain"
#: A builder sets this annotation to "true" on a child that is created when absent and never updated
#: after: generated credentials, whose builder cannot know the value already issued before the watch
#: has listed it (a restart), and must not replace it.
CREATE_ONLY_ANNOTATION = "troupe.dev/create-only"
#: Annotation on every child naming its owner's uid: what makes a child this owner's own. The name in
#: ``troupe.dev/owner`` alone is not enough, since an owner deleted and created again has the same name.
OWNER_UID_ANNOTATION = "troupe.dev/owner-uid"


_MISSING = object()
#: Metadata the API server owns: a child kept as observed is applied without it.
_SERVER_METADATA = frozenset(
    {
        "managedFields",
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    }
)


def owner_key(kind: KindSpec, namespace: str | None, name: str) -> str:
    return f"{kind.kind}.{kind.group}/{namespace or ''}/{name}"


def is_subset(desired: Any, observed: Any) -> bool:
    """True when every field of ``desired`` is present with the same value in ``observed``.

    Fields the server or other controllers added (defaults, status, managedFields) don't count. Lists
    must have the same length and match position by position, since apply would replace them. A desired
    empty value matches an absent one (a retained child's ``ownerReferences: []`` is stored as nothing).
    A value that *is* the observed one (a builder keeping an observed pod's spec) is not walked.
    """
    if desired is observed:
        return True
    if type(desired) is str:  # most values: the checks below would come to the same, four steps later
        return bool(desired == observed)
    if isinstance(desired, dict):
        if not isinstance(observed, dict):
            return False
        for key, value in desired.items():
            found = observed.get(key, _MISSING)
            if found is _MISSING or not found:
                # None, [] and {} are stored as nothing at all: the API server keeps no empty list
                if value in (None, [], {}):
                    continue
                if found is _MISSING:
                    return False
            if not is_subset(value, found):
                return False
        return True
    if isinstance(desired, list):
        if not isinstance(observed, list) or len(desired) != len(observed):
            return False
        return all(is_subset(d, o) for d, o in zip(desired, observed, strict=True))
    if isinstance(desired, bool) or isinstance(observed, bool):
        return desired is observed
    if isinstance(desired, int | float) and isinstance(observed, int | float):
        return float(desired) == float(observed)
    return bool(desired == observed)


def as_applied(observed: Manifest, manager: str) -> list[dict[str, Any]] | None:
    """The JSON patch that makes what ``manager`` created (an ``Update`` entry of the managed fields) its
    apply's, or None when it holds no such entry.

    A child is created by a POST, which records its fields as an Update, and is applied afterwards. An
    apply removes a field it no longer sends only when no other entry owns it: left as an Update, what
    the create set would stay for good once a builder stopped setting it (and a list one item shorter
    would be re-applied on every reconcile). Renaming the operation moves the ownership as it is; the
    tests make the patch fail (422) when the entry has moved since it was observed. When ``manager``
    has an Apply entry already (only another program using its name makes both) nothing is renamed: one
    manager's apply has one entry.
    """
    entries = (observed.get("metadata") or {}).get("managedFields") or []
    if any(e.get("manager") == manager and e.get("operation") == "Apply" for e in entries):
        return None
    for i, entry in enumerate(entries):
        if (
            entry.get("manager") == manager
            and entry.get("operation") == "Update"
            and not entry.get("subresource")
        ):
            at = f"/metadata/managedFields/{i}"
            return [
                {"op": "test", "path": f"{at}/manager", "value": manager},
                {"op": "test", "path": f"{at}/operation", "value": "Update"},
                {"op": "replace", "path": f"{at}/operation", "value": "Apply"},
            ]
    return None


def as_kept(observed: Manifest) -> Manifest:
    """An observed child as a manifest that keeps it as it is: itself without its status and what the
    server owns. Its metadata maps are copies (completing a child writes into them); the rest is the
    observed object's own (nothing writes into a built manifest's spec), not a deep copy."""
    kept = {k: v for k, v in observed.items() if k not in ("status", "metadata")}
    meta = observed.get("metadata") or {}
    kept["metadata"] = {k: _copy(v) for k, v in meta.items() if k not in _SERVER_METADATA}
    return kept


def _copy(value: Any) -> Any:
    """A copy of a metadata field (labels, annotations: maps of strings; owner references, finalizers:
    lists of flat maps or strings); much cheaper than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return [dict(v) if isinstance(v, dict) else v for v in value]
    return value


def complete_child(kind: KindSpec, owner: Manifest, manifest: Manifest, child: ChildKind) -> Manifest:
    """Add what every child carries: standard labels, the owner annotation, owner reference, namespace."""
    meta = owner["metadata"]
    metadata = manifest.setdefault("metadata", {})
    labels = metadata.setdefault("labels", {})
    for key, value in standard_labels(kind.operator, kind.kind, meta["name"]).items():
        labels.setdefault(key, value)
    annotations = metadata.setdefault("annotations", {})
    annotations[OWNER_ANNOTATION] = owner_key(kind, meta.get("namespace"), meta["name"])
    annotations[OWNER_UID_ANNOTATION] = meta.get("uid", "")
    if metadata["annotations"].get(RETAIN_ANNOTATION) == "true":
        # An explicit empty list, so server-side apply drops a reference this manager set before.
        metadata["ownerReferences"] = []
    elif not kind.namespaced or (
        child.namespaced and metadata.get("namespace", meta.get("namespace")) == meta.get("namespace")
    ):
        # A namespaced owner can own only what lives in its own namespace: GC treats a reference from a
        # cluster-scoped child or from another namespace as a missing owner and deletes the child at
        # once. Those children carry the owner annotations only; the plugin's finalizer cleans them up.
        adopt(manifest, owner)
        for ref in metadata.get("ownerReferences", []):
            ref.setdefault("controller", True)
            ref.setdefault("blockOwnerDeletion", True)
    if not child.namespaced:
        metadata.pop("namespace", None)
    elif not metadata.get("namespace"):
        if not kind.namespaced:
            raise ValueError(
                f"a {manifest['kind']} child of the cluster-scoped {kind.kind} needs metadata.namespace"
            )
        metadata["namespace"] = meta["namespace"]
    return manifest


def adopt(manifest: Manifest, owner: Manifest) -> None:
    """What ``kopf.adopt(manifest, owner=owner)`` does to a dict (tests/test_apply.py compares the two):
    the owner's controller reference unless one of its uid is there, a ``generateName`` after the owner
    when the child has no name, the owner's namespace when the child has none, and the owner's labels
    where the child has none of that key. kopf's own walks its types and abstract classes for each
    child: a fifth of a reconcile of a hundred children."""
    meta = owner.get("metadata", {})
    reference = {
        "controller": True,
        "blockOwnerDeletion": True,
        "apiVersion": owner.get("apiVersion"),
        "kind": owner.get("kind"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
    }
    reference = {k: v for k, v in reference.items() if v is not None}
    metadata = manifest.setdefault("metadata", {})
    refs = metadata.setdefault("ownerReferences", [])
    if not any(ref.get("uid") == reference["uid"] for ref in refs):
        refs.append(reference)
    if "name" not in metadata and "generateName" not in metadata:
        metadata["generateName"] = f"{meta.get('name')}-"
    if metadata.get("namespace") is None:
        metadata["namespace"] = meta.get("namespace")
    labels = metadata.setdefault("labels", {})
    for key, value in (meta.get("labels") or {}).items():
        labels.setdefault(key, value)


def holder(observed: Manifest, owner: Manifest, field_manager: str) -> str | None:
    """Who holds ``observed`` when it is not ``owner``'s own child, for a NameConflict message; else None.

    A child is the owner's own when its ``troupe.dev/owner-uid`` annotation or one of its owner references
    names the owner's uid. Children written before the uid annotation existed (a retained claim without
    owner reference) count when they carry the owner annotation, no uid annotation, and our field manager.
    """
    meta = observed.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    uid = owner["metadata"].get("uid")
    refs = meta.get("ownerReferences") or []
    if annotations.get(OWNER_UID_ANNOTATION) == uid or any(r.get("uid") == uid for r in refs):
        return None
    key = owner_key_of(owner)
    managers = {m.get("manager") for m in meta.get("managedFields") or []}
    if (
        OWNER_UID_ANNOTATION not in annotations
        and annotations.get(OWNER_ANNOTATION) == key
        and not refs
        and field_manager in managers
    ):
        return None
    if annotations.get(OWNER_ANNOTATION):
        return f"{annotations[OWNER_ANNOTATION]} (uid {annotations.get(OWNER_UID_ANNOTATION) or 'unknown'})"
    controller = next((r for r in refs if r.get("controller")), None)
    if controller:
        return f"{controller.get('kind')} {controller.get('name')}"
    writers = sorted(m for m in managers if m)
    return f"an object this operator did not create (written by {', '.join(writers) or 'someone else'})"


def owner_key_of(owner: Manifest) -> str:
    """The ``troupe.dev/owner`` value of children of ``owner`` (a custom object's body)."""
    meta = owner["metadata"]
    group = str(owner.get("apiVersion", "")).rpartition("/")[0]
    return f"{owner.get('kind')}.{group}/{meta.get('namespace') or ''}/{meta['name']}"
