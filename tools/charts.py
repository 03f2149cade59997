"""Each chart's RBAC, generated from what its plugin declares (KindSpecs), like its CRDs.

``tools/crds.py`` writes the result into ``charts/<operator>-operator/files/rbac.yaml`` (read by the
troupe-common library chart's RBAC template) and into the RBAC table of the chart's README; ``make
check-crds`` fails when either is stale. Everything here is pure: declarations in, text out.

The mapping from a declaration to verbs is :func:`kind_grants` and :func:`runtime_grants`, and nowhere
else: when the core learns to do more with a declaration, the verbs change there.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from troupe.kinds import ChildKind, KindSpec

#: Where a grant goes. ``namespaced``: a Role in each watched namespace (chart value watchNamespaces), or
#: the ClusterRole when the operator watches all namespaces. ``watchNamespaces`` / ``allNamespaces``: only
#: in that mode. ``cluster``: cluster-scoped resources, always in a ClusterRole.
Section = Literal["namespaced", "watchNamespaces", "allNamespaces", "cluster"]
SECTIONS: tuple[Section, ...] = ("namespaced", "watchNamespaces", "allNamespaces", "cluster")

READ: tuple[str, ...] = ("get", "list", "watch")
#: A child is created by a POST (``create``), then server-side applied (a PATCH) when it changes.
APPLY: tuple[str, ...] = ("create", "patch")
VERB_ORDER = ("get", "list", "watch", "create", "update", "patch", "delete")


@dataclass(frozen=True)
class Grant:
    """Verbs on one resource, and why the operator needs them."""

    section: Section
    group: str
    resource: str
    verbs: tuple[str, ...]
    why: str


def _scope(namespaced: bool) -> Section:
    return "namespaced" if namespaced else "cluster"


def child_grant(owner: KindSpec, child: ChildKind) -> Grant:
    if child.observe_only:
        verbs, why = READ, f"{owner.kind} children made by another controller: watched only"
    else:
        verbs = READ + APPLY + (("delete",) if child.prune else ())
        why = f"{owner.kind} children: watched, read, created, server-side applied (patch)"
        why += ", deleted when no longer built" if child.prune else ", never deleted (prune=False)"
    return Grant(_scope(child.namespaced), child.group, child.plural, verbs, why)


def kind_grants(kind: KindSpec) -> Iterator[Grant]:
    """What the core does with one declared kind, its status, and its children."""
    scope = _scope(kind.namespaced)
    if not kind.reconcile:  # driven by the plugin's own handlers, which the core only lets read
        yield Grant(scope, kind.group, kind.plural, READ, f"{kind.kind}: watched")
        return
    # delete: the core deletes an object whose status hook asks it to (StatusUpdate.delete, end of life)
    verbs = READ + (("patch",) if kind.finalize else ()) + ("delete",)
    why = f"{kind.kind}: watched" + ("; patch: the finalizer" if kind.finalize else "")
    yield Grant(scope, kind.group, kind.plural, verbs, why + "; delete: at the end of its life if asked")
    yield Grant(scope, kind.group, f"{kind.plural}/status", ("patch",), f"{kind.kind} status")
    if kind.children:
        # owner references with blockOwnerDeletion need this where OwnerReferencesPermissionEnforcement
        # is on (OpenShift); elsewhere the API server does not ask
        yield Grant(
            scope,
            kind.group,
            f"{kind.plural}/finalizers",
            ("update",),
            f"{kind.kind} owner references on children",
        )
    for child in kind.children:
        yield child_grant(kind, child)
    for related in kind.related:
        why = f"{related.kind} read by {kind.kind} (related kind): watched, never written"
        yield Grant(_scope(related.namespaced), related.group, related.plural, READ, why)
    if any(dep.optional for dep in kind.watched):
        why = f"{kind.kind} waits for optional APIs (MissingAPI) and proceeds when their CRD appears"
        yield Grant("cluster", "apiextensions.k8s.io", "customresourcedefinitions", READ, why)
    # the core posts Events into the object's namespace (cluster-scoped objects: "default")
    yield Grant(scope, "", "events", ("create",), f"Events on {kind.kind} condition changes")


def runtime_grants() -> Iterator[Grant]:
    """What kopf needs in each watch mode: its peering object (leader election) and its scanning."""
    peering = ("get", "list", "watch", "patch")
    yield Grant("watchNamespaces", "kopf.dev", "kopfpeerings", peering, "leader election")
    yield Grant("allNamespaces", "kopf.dev", "clusterkopfpeerings", peering, "leader election")
    scan = "kopf follows CRDs and namespaces appearing while it watches all namespaces"
    yield Grant("allNamespaces", "apiextensions.k8s.io", "customresourcedefinitions", ("list", "watch"), scan)
    yield Grant("allNamespaces", "", "namespaces", ("list", "watch"), scan)


def merge(grants: Iterable[Grant]) -> list[Grant]:
    """One grant per (section, group, resource): verbs united in a fixed order, reasons kept in order."""
    merged: dict[tuple[Section, str, str], Grant] = {}
    for g in grants:
        key = (g.section, g.group, g.resource)
        old = merged.get(key)
        if old is None:
            merged[key] = g
            continue
        verbs = set(old.verbs) | set(g.verbs)
        why = old.why if g.why in old.why.split("; ") else f"{old.why}; {g.why}"
        merged[key] = Grant(g.section, g.group, g.resource, tuple(v for v in VERB_ORDER if v in verbs), why)
    return [merged[k] for k in sorted(merged, key=lambda k: SECTIONS.index(k[0]))]


def operator_grants(kinds: Sequence[KindSpec], operator: str) -> list[Grant]:
    """Every grant the ``operator``'s process needs: its kinds' and kopf's."""
    own = [g for k in kinds if k.operator == operator for g in kind_grants(k)]
    return merge([*own, *runtime_grants()])


def render_rbac(operator: str, grants: Sequence[Grant]) -> str:
    """``files/rbac.yaml``: sections of RBAC rules, each rule with its reason as a comment."""
    lines = [
        f"# Generated by `make crds` (tools/charts.py) from the {operator} plugin's KindSpecs: do not edit.",
        "# `make check-crds` fails when it is stale. troupe-common's RBAC template puts",
        "#   namespaced       into a Role in each of watchNamespaces, or the ClusterRole for all namespaces",
        "#   watchNamespaces  into those Roles only",
        "#   allNamespaces    into that ClusterRole only",
        "#   cluster          (cluster-scoped resources) into a ClusterRole in either mode",
    ]
    for section in SECTIONS:
        rules = [g for g in grants if g.section == section]
        lines.append(f"{section}:" + ("" if rules else " []"))
        for g in rules:
            lines += [
                f"  # {g.why}",
                f"  - apiGroups: {json.dumps([g.group])}",
                f"    resources: {json.dumps([g.resource])}",
                f"    verbs: {json.dumps(list(g.verbs))}",
            ]
    return "\n".join(lines) + "\n"


README_BEGIN = "<!-- rbac: generated by `make crds` from files/rbac.yaml; do not edit -->"
README_END = "<!-- /rbac -->"
_WHERE = {
    "namespaced": "always",
    "watchNamespaces": "with `watchNamespaces` only",
    "allNamespaces": "watching all namespaces only",
    "cluster": "cluster-wide always",
}


def rbac_table(grants: Sequence[Grant]) -> str:
    rows = ["| resource | verbs | when | why |", "|---|---|---|---|"]
    for g in grants:
        resource = f"{g.resource} ({g.group})" if g.group else g.resource
        rows.append(f"| {resource} | {', '.join(g.verbs)} | {_WHERE[g.section]} | {g.why} |")
    return "\n".join(rows)


def with_rbac_table(readme: str, grants: Sequence[Grant]) -> str:
    """``readme`` with the text between the RBAC markers replaced by the table of ``grants``."""
    head, begin, rest = readme.partition(README_BEGIN)
    _, end, tail = rest.partition(README_END)
    if not begin or not end:
        raise ValueError(f"the README has no {README_BEGIN} ... {README_END} block")
    return f"{head}{begin}\n{rbac_table(grants)}\n{end}{tail}"
