"""Declarations a plugin makes about the kinds it serves: the CRD shape and the children it owns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

Scope = Literal["Namespaced", "Cluster"]


@dataclass(frozen=True)
class PrinterColumn:
    """One `additionalPrinterColumns` entry: what `kubectl get` shows."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class ChildKind:
    """A kind of object the operator creates for each custom object.

    ``prune``: children of this kind that the builders stop returning are deleted. PersistentVolumeClaims
    and anything holding user data should say ``prune=False``; the core never deletes those on its own.
    ``optional``: the kind's API may be absent from a cluster (a CRD of another project, like KubeVirt's
    VirtualMachine). The operator then starts all the same; an object whose builders return such a child
    gets condition ``MissingAPI`` saying ``missing_hint``, and proceeds once the CRD is installed.

    ``observe_only``: children of this kind are made by another controller from what the operator built
    (the pods of its Deployments) and carry its owner label; the core watches them into ``ctx.children``,
    and builders never return them. The chart's generated RBAC then grants only get, list and watch.

    ``reads``: what the plugin's hooks read of these children, as dotted paths (``("status.readyReplicas",)``;
    ``()`` for nothing). A list is entered by its items' ``type`` or ``name``
    (``status.conditions.Ready.status``). A watch event then reconciles the owner only when it changes a
    path read, starts the child's deletion, or changes what the operator applied (another writer taking
    over or removing a field of its apply); other controllers' changes (a Deployment's conditions and
    revision annotation, a pod's IPs and node, a claim's volume name) are recorded in ``ctx.children``
    and reconcile nobody. A child appearing or going always counts. ``None`` (the default): every change
    counts.
    """

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True
    prune: bool = True
    optional: bool = False
    missing_hint: str = ""
    observe_only: bool = False
    reads: tuple[str, ...] | None = None

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


#: (namespace, name) of a related object; namespace None for a cluster-scoped kind.
Reference = tuple[str | None, str]


@dataclass(frozen=True)
class RelatedKind:
    """A kind the operator reads but does not own: a flavor, a policy ConfigMap, a Project.

    ``references`` is a pure function from an object's body to the related objects it uses (a name in its
    spec, a fixed policy name). The core watches the kind, hands the referenced objects that exist to the
    hooks in ``ctx.related``, and reconciles every dependent when one of them appears, changes or goes.
    ``optional`` and ``missing_hint`` as for :class:`ChildKind`.
    """

    api_version: str
    kind: str
    plural: str
    references: Callable[[dict[str, Any]], Iterable[Reference]]
    namespaced: bool = True
    optional: bool = False
    missing_hint: str = ""

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


@dataclass(frozen=True)
class Admission:
    """At most ``limit`` objects of a kind provisioning at once; the rest wait, first come first served.

    Derived from observed state, so every reconcile and a restarted operator agree: an object for which
    ``holding(body)`` is True (its status says it provisions) keeps its slot; those for which
    ``waiting(body)`` is True queue by creation time, and the first ones that fit in the free slots are
    admitted. ``limit(related)`` reads the limit from the object's related objects (a policy ConfigMap),
    so a change takes effect at once; None means no limit. Builders see ``ctx.admission``.
    """

    limit: Callable[[Any], int | None]
    holding: Callable[[dict[str, Any]], bool]
    waiting: Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class Action:
    """A step that takes seconds to minutes (a helm upgrade, a registry lookup, a git fetch).

    The status hook asks for it by name with its inputs (``StatusUpdate.actions``); the core runs
    ``run(inputs, handle)`` as a task of its own, outside any reconcile, for at most ``timeout`` seconds,
    and records the outcome in ``status.actions[name]``: a step done for these inputs is not run again,
    one in flight when the operator stopped runs again after the restart, new inputs cancel a running
    one, and the object's deletion cancels it. ``run`` must be idempotent (``helm upgrade --install``);
    it returns a small JSON result (stored in status) or raises, which records ``Failed`` with the error.
    """

    name: str
    run: Callable[[dict[str, Any], Any], Awaitable[dict[str, Any]]]
    timeout: float = 600.0


@dataclass(frozen=True)
class KindSpec:
    """A custom resource kind served by one operator.

    The spec and status pydantic models are the only source of the CRD schema (see ``troupe.crd``).
    ``reconcile`` False means the core generates the CRD but runs no generic reconcile loop for the kind
    (a plugin that drives it with its own handlers, or a kind that is only configuration).

    ``batch_window``: seconds a child's event waits before it reconciles its owner, so that what the
    cluster's controllers do in quick succession (a claim binding, a pod appearing, its Deployment
    counting it) is one reconcile, not one each. A reconcile that starts meanwhile (for any reason) takes
    the event in. 0 (the default): at once, for kinds whose next step waits on a child (a workflow).

    ``status_interval``: seconds between two status writes of one object when neither its phase nor a
    condition changes (those are written at once). None: the core's default, about once a second. A
    kind whose objects are large and whose status changes many times a second (a workflow's task list)
    may write its progress less often: each write costs the API server tens of milliseconds whatever
    its size, on the CPU that also creates the next children.
    """

    operator: str
    group: str
    version: str
    kind: str
    plural: str
    spec_model: type[BaseModel]
    status_model: type[BaseModel] | None = None
    scope: Scope = "Namespaced"
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    printer_columns: tuple[PrinterColumn, ...] = ()
    children: tuple[ChildKind, ...] = ()
    related: tuple[RelatedKind, ...] = ()
    admission: Admission | None = None
    actions: tuple[Action, ...] = ()
    description: str = ""
    spec_required: bool = True
    reconcile: bool = True
    finalize: bool = False
    resync_seconds: float = 300.0
    batch_window: float = 0.0
    status_interval: float | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def namespaced(self) -> bool:
        return self.scope == "Namespaced"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def watched(self) -> tuple[ChildKind | RelatedKind, ...]:
        """The kinds whose watches this kind's reconciles depend on: its children and related kinds."""
        return (*self.children, *self.related)

    def action(self, name: str) -> Action | None:
        return next((a for a in self.actions if a.name == name), None)

    def child(self, api_version: str, kind: str) -> ChildKind | None:
        return next((c for c in self.children if c.api_version == api_version and c.kind == kind), None)
