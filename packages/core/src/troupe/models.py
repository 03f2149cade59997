"""Base classes for spec and status models: camelCase on the wire, docstrings as descriptions."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from troupe.conditions import Condition


class SpecModel(BaseModel):
    """Base of every spec model.

    Fields are snake_case in Python and camelCase in manifests; attribute docstrings become the CRD's
    field descriptions. Unknown fields are ignored here because the API server already pruned them.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        extra="ignore",
        frozen=True,
    )

    def dump(self) -> dict[str, Any]:
        """The manifest form: camelCase keys, unset optionals left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class StatusModel(SpecModel):
    """Base of every status model: the fields the core owns on every kind."""

    model_config = ConfigDict(frozen=False)

    phase: str | None = None
    """The lifecycle phase."""
    observed_generation: int | None = None
    """The metadata.generation this status was computed for."""
    conditions: list[Condition] = Field(default_factory=list)
    """Current state in metav1.Condition form; lastTransitionTime moves only when status changes."""
