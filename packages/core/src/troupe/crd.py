"""Generate CustomResourceDefinitions (apiextensions.k8s.io/v1) from a kind's pydantic models.

We tried ``kube-custom-resource`` first (see docs/architecture.md): it requires its own metaclass base
model and camelCase convention and has no place for categories or field-level CEL rules, so the models
would have had to serve it rather than the operators. This module is the small part of it we need: a
pydantic JSON schema made structural the way the API server requires.
"""

from __future__ import annotations

from typing import Any

import yaml

from troupe.context import ActionRecord
from troupe.kinds import KindSpec

Schema = dict[str, Any]

# JSON-schema keywords the apiextensions v1 JSONSchemaProps knows; anything else pydantic emits is dropped.
_KEEP = {
    "type", "format", "description", "default", "enum", "pattern", "minimum", "maximum",
    "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties",
    "multipleOf", "items", "properties", "required", "additionalProperties", "nullable",
    "x-kubernetes-validations", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
    "x-kubernetes-embedded-resource",
}  # fmt: skip


class SchemaError(ValueError):
    """A model uses a construct that has no structural-schema equivalent."""


def _resolve(node: Any, defs: dict[str, Schema]) -> Any:
    if isinstance(node, list):
        return [_resolve(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**_resolve(target, defs), **{k: v for k, v in node.items() if k != "$ref"}}
        return merged
    return {k: _resolve(v, defs) for k, v in node.items() if k != "$defs"}


def _collapse_union(node: Schema, path: str) -> Schema:
    variants = node.pop("anyOf", None) or node.pop("oneOf", None)
    if variants is None:
        return node
    non_null = [v for v in variants if v.get("type") != "null"]
    types = sorted({v.get("type", "") for v in non_null})
    if len(non_null) == 1:
        return {**non_null[0], **node}
    if types == ["integer", "string"] and len(non_null) == 2:
        return {"x-kubernetes-int-or-string": True, **node}
    # A union of shapes: the API server cannot type it, the model validates it in the operator.
    return {"x-kubernetes-preserve-unknown-fields": True, **node}


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _structural(node: Schema, path: str) -> Schema:
    node = _collapse_union(dict(node), path)
    if "allOf" in node:  # pydantic wraps a $ref with siblings in allOf
        parts = node.pop("allOf")
        for part in parts:
            node = {**part, **node}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "exclusiveMinimum" in node:
        node["minimum"], node["exclusiveMinimum"] = node.pop("exclusiveMinimum"), True
    if "exclusiveMaximum" in node:
        node["maximum"], node["exclusiveMaximum"] = node.pop("exclusiveMaximum"), True
    exclusive = {k: node[k] for k in ("exclusiveMinimum", "exclusiveMaximum") if k in node}
    if node.get("default", 0) is None:
        del node["default"]
    elif "default" in node:
        # A model default dumps unset optionals as null, which a structural schema refuses.
        node["default"] = _without_nulls(node["default"])
    if node.get("uniqueItems"):
        raise SchemaError(f"{path}: uniqueItems is not allowed in a CRD; use x-kubernetes-list-type: set")

    out: Schema = {k: v for k, v in node.items() if k in _KEEP}
    out.update(exclusive)
    if "enum" in out and "type" not in out:
        out["type"] = "string" if all(isinstance(v, str) for v in out["enum"]) else "integer"
    if "properties" in out:
        out["type"] = "object"
        out["properties"] = {k: _structural(v, f"{path}.{k}") for k, v in out["properties"].items()}
        out.pop("additionalProperties", None)
        if not out.get("required"):
            out.pop("required", None)
    elif out.get("type") == "object" or "additionalProperties" in out:
        extra = out.pop("additionalProperties", True)
        out["type"] = "object"
        if isinstance(extra, dict) and extra:
            out["additionalProperties"] = _structural(extra, f"{path}.*")
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
    if "items" in out:
        out["items"] = _structural(out["items"], f"{path}[]")
    if "type" not in out and not out.get("x-kubernetes-int-or-string"):
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def model_schema(model: type[Any], path: str = "") -> Schema:
    """The structural openAPIV3Schema of a pydantic model (validation mode, aliases)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    resolved = _resolve(raw, raw.get("$defs", {}))
    return _structural(resolved, path or model.__name__)


def build_crd(kind: KindSpec) -> dict[str, Any]:
    """The CustomResourceDefinition manifest of ``kind``."""
    spec_schema = model_schema(kind.spec_model, "spec")
    properties: Schema = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": spec_schema,
    }
    version: dict[str, Any] = {"name": kind.version, "served": True, "storage": True}
    if kind.status_model is not None:
        properties["status"] = model_schema(kind.status_model, "status")
        version["subresources"] = {"status": {}}
    if kind.actions:  # the core records each long-running step's outcome there
        status = properties.setdefault("status", {"type": "object", "properties": {}})
        status.setdefault("properties", {})["actions"] = {
            "type": "object",
            "description": "Long-running steps by name: inputs digest, phase, times, result or error.",
            "additionalProperties": model_schema(ActionRecord, "status.actions.*"),
        }
        version["subresources"] = {"status": {}}
    root: Schema = {"type": "object", "properties": properties}
    if kind.description:
        root["description"] = kind.description
    if kind.spec_required:
        root["required"] = ["spec"]
    version["schema"] = {"openAPIV3Schema": root}
    columns = [
        {
            "name": c.name,
            "type": c.type,
            "jsonPath": c.json_path,
            **({"description": c.description} if c.description else {}),
            **({"priority": c.priority} if c.priority else {}),
        }
        for c in kind.printer_columns
    ]
    columns.append({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})
    version["additionalPrinterColumns"] = columns
    names: dict[str, Any] = {
        "kind": kind.kind,
        "listKind": f"{kind.kind}List",
        "plural": kind.plural,
        "singular": kind.singular or kind.kind.lower(),
    }
    if kind.short_names:
        names["shortNames"] = list(kind.short_names)
    if kind.categories:
        names["categories"] = list(kind.categories)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/part-of": "troupe", "troupe.dev/operator": kind.operator},
        },
        "spec": {"group": kind.group, "names": names, "scope": kind.scope, "versions": [version]},
    }


def render(documents: list[dict[str, Any]]) -> str:
    """YAML with sorted keys, one document per CRD: byte-stable, so a diff shows staleness."""
    header = "# Generated by `make crds` from the pydantic models. Do not edit.\n"
    return header + "---\n".join(
        yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, width=1000) for doc in documents
    )
