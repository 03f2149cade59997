"""The Workshop schema: the seed's defaults, and bad input refused with the field's name."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from troupe.crd import build_crd
from troupe_workshop.models import WorkshopSpec
from troupe_workshop.plugin import WORKSHOP


def test_seed_defaults() -> None:
    spec = WorkshopSpec()
    assert (spec.duration, spec.image) == ("4h", "rocker/rstudio:latest")
    assert (spec.resources.cpu, spec.resources.memory, spec.storage.size) == ("1", "2Gi", "10Gi")
    assert spec.storage.retain_on_expiry and spec.expiry_warning == "15m"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"duration": "4 hours"}, "duration"),
        ({"duration": "-1h"}, "duration"),
        ({"duration": ""}, "duration"),
        ({"resources": {"cpu": "lots"}}, "resources.cpu"),
        ({"resources": {"memory": "-2Gi"}}, "resources.memory"),
        ({"storage": {"size": "10 GB"}}, "storage.size"),
        ({"image": ""}, "image"),
        ({"image": "rocker/rstudio latest"}, "image"),
        ({"participants": 0}, "participants"),
        ({"participantNames": ["Ada Lovelace"]}, "participantNames.0"),
        ({"ingress": {"host": "Not A Host"}}, "ingress.host"),
        ({"terminationGracePeriodSeconds": -1}, "terminationGracePeriodSeconds"),
    ],
)
def test_bad_values_name_their_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        WorkshopSpec.model_validate(spec)
    locs = {".".join(str(p) for p in e["loc"]) for e in err.value.errors()}
    assert any(loc.replace("_", "").lower().startswith(field.replace(".", "").lower()[:6]) for loc in locs), (
        locs
    )


def test_crd_carries_the_seed_contract_and_cel_rules() -> None:
    crd = build_crd(WORKSHOP)
    assert crd["metadata"]["name"] == "workshops.orchestra.io"
    version = crd["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["duration"]["default"] == "4h"
    assert spec["properties"]["resources"]["default"] == {"cpu": "1", "memory": "2Gi"}
    assert spec["properties"]["ingress"]["properties"]["annotations"]["additionalProperties"] == {
        "type": "string"
    }
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert any("participantNames" in r for r in rules) and any("tlsSecretName" in r for r in rules)
    phase = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["phase"]
    assert phase["enum"] == ["Pending", "Creating", "Ready", "Running", "Terminating", "Failed"]
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["shortNames"] == ["ws"]
