"""Golden test of the CRD generator on a model with nested objects, lists, enums, defaults, maps, CEL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import Field

from troupe import KindSpec, SpecModel
from troupe.crd import SchemaError, build_crd, model_schema, render
from troupe_example.greeting import GREETING

GOLDEN = Path(__file__).parent / "golden" / "greeting_crd.yaml"


def test_greeting_crd_matches_golden() -> None:
    text = render([build_crd(GREETING)])
    if os.environ.get("TROUPE_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "CRD output changed; rerun with TROUPE_UPDATE_GOLDEN=1 if intended"


def test_output_is_deterministic() -> None:
    assert render([build_crd(GREETING)]) == render([build_crd(GREETING)])


def spec_of(crd: dict[str, Any]) -> dict[str, Any]:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]  # type: ignore[no-any-return]


def test_structural_rules() -> None:
    crd = build_crd(GREETING)
    version = crd["spec"]["versions"][0]
    spec = spec_of(crd)
    assert spec["required"] == ["name"]
    assert spec["properties"]["delivery"]["properties"]["channel"]["enum"] == ["configmap", "log"]
    assert spec["properties"]["delivery"]["default"] == {"channel": "configmap", "repeat": 1}
    assert spec["properties"]["extra"] == {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": "Extra keys copied into the ConfigMap.",
    }
    assert spec["properties"]["tags"]["maxItems"] == 8
    assert spec["x-kubernetes-validations"][0]["message"] == "name and message must differ"
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["shortNames"] == ["greet"]
    assert crd["spec"]["names"]["categories"] == ["troupe"]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Name", "Phase", "Age"]
    text = yaml.safe_dump(crd)
    for forbidden in ("$ref", "$defs", "title", "anyOf", "allOf", "null"):
        assert forbidden not in text


class Shapes(SpecModel):
    free: dict[str, Any] = Field(default_factory=dict)
    """Anything goes here."""
    port: int | str = 8080
    either: int | list[str] | None = None
    mode: Literal["a"] = "a"
    ratio: float = Field(default=0.5, gt=0, lt=1)


def test_free_form_int_or_string_unions_const_and_exclusive_bounds() -> None:
    props = model_schema(Shapes)["properties"]
    assert props["free"]["x-kubernetes-preserve-unknown-fields"] is True
    assert props["port"]["x-kubernetes-int-or-string"] is True
    assert props["either"]["x-kubernetes-preserve-unknown-fields"] is True
    assert props["mode"]["enum"] == ["a"] and props["mode"]["type"] == "string"
    assert props["ratio"]["minimum"] == 0 and props["ratio"]["exclusiveMinimum"] is True
    assert props["ratio"]["maximum"] == 1 and props["ratio"]["exclusiveMaximum"] is True
    assert "x-kubernetes-preserve-unknown-fields" not in model_schema(Shapes)


def test_unique_items_is_refused_with_advice() -> None:
    class Bad(SpecModel):
        names: set[str] = Field(default_factory=set)

    kind = KindSpec(operator="t", group="t.io", version="v1", kind="Bad", plural="bads", spec_model=Bad)
    with pytest.raises(SchemaError, match="x-kubernetes-list-type"):
        build_crd(kind)


def test_nested_defaults_leave_out_unset_optionals() -> None:
    class Inner(SpecModel):
        size: str = "1Gi"
        storage_class: str | None = None

    class Outer(SpecModel):
        inner: Inner = Inner()

    kind = KindSpec("t", "t.troupe.dev", "v1", "Thing", "things", spec_model=Outer)
    schema = build_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema["properties"]["spec"]["properties"]["inner"]["default"] == {"size": "1Gi"}
