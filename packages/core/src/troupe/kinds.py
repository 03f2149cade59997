"""Declarations a plugin makes about the kinds it serves: the CRD shape and the children it owns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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

    ``observe_only``: children of this kind are made by another controller from what the operator built
    (the pods of its Deployments) and carry its owner label; the core watches them into ``ctx.children``,
    and builders never return them. The chart's generated RBAC then grants only get, list and watch.
    """

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True
    prune: bool = True
    observe_only: bool = False

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


@dataclass(frozen=True)
class KindSpec:
    """A custom resource kind served by one operator.

    The spec and status pydantic models are the only source of the CRD schema (see ``troupe.crd``).
    ``reconcile`` False means the core generates the CRD but runs no generic reconcile loop for the kind
    (a plugin that drives it with its own handlers, or a kind that is only configuration).
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
    description: str = ""
    spec_required: bool = True
    reconcile: bool = True
    finalize: bool = False
    resync_seconds: float = 300.0

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def namespaced(self) -> bool:
        return self.scope == "Namespaced"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    def child(self, api_version: str, kind: str) -> ChildKind | None:
        return next((c for c in self.children if c.api_version == api_version and c.kind == kind), None)
