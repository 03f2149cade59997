"""The Workshop schema: the seed's defaults, and bad input refused with the field's name."""

from __future__ import annotations

from datetime import UTC, datetime
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
        # huge and tiny values: nothing the operator cannot add to a time or compare
        ({"duration": "99999999999999d"}, "duration"),
        ({"duration": "999999999d"}, "duration"),
        ({"duration": "0s"}, "duration"),
        ({"duration": "59s"}, "duration"),
        ({"expiryWarning": "99999999999999d"}, "expiryWarning"),
        ({"expiryWarning": "36501d"}, "expiryWarning"),
        ({"startTime": "9999-12-31T23:59:59Z"}, "startTime"),
        ({"startTime": "0001-01-01T00:00:00Z"}, "startTime"),
        ({"startTime": "tomorrow"}, "startTime"),
        ({"resources": {"cpu": "0"}}, "resources.cpu"),
        ({"resources": {"memory": "0.0Gi"}}, "resources.memory"),
        ({"storage": {"size": "0"}}, "storage.size"),
        ({"storage": {"size": "9999999999999Ei"}}, "storage.size"),
        ({"resources": {"cpu": "1e999"}}, "resources.cpu"),
        ({"participantNames": ["rstudio"]}, "participantNames.0"),
        ({"participantNames": ["ada", "ada"]}, "participantNames"),
        ({"participantNames": ["Ada"]}, "participantNames.0"),
        ({"participantNames": ["a.b"]}, "participantNames.0"),
        ({"participantNames": ["ä"]}, "participantNames.0"),
        ({"participants": 10_000}, "participants"),
        ({"ingress": {"host": "10.0.0.1"}}, "ingress.host"),
        ({"ingress": {"annotations": {"not a key": "x"}}}, "ingress.annotations"),
        ({"ingress": {"annotations": {"a/" + "b" * 64: "x"}}}, "ingress.annotations"),
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


def test_bounds_that_hold() -> None:
    spec = WorkshopSpec.model_validate(
        {
            "duration": "36500d",
            "expiryWarning": "0s",
            "startTime": "2199-12-31T23:59:59Z",
            "resources": {"cpu": "0.001", "memory": "1"},
            "participantNames": ["a" * 40, "0", "x--y"],
            "ingress": {"host": "a." + "b" * 70 + ".org", "annotations": {"example.org/x_y.z": ""}},
        }
    )
    assert spec.start_time is not None and spec.start_time.year == 2199
    assert WorkshopSpec.model_validate({"duration": "1m"}).duration == "1m"


def test_a_start_time_without_a_zone_is_utc() -> None:
    spec = WorkshopSpec.model_validate({"startTime": "2026-11-26T10:00:00"})
    assert spec.start_time == datetime(2026, 11, 26, 10, tzinfo=UTC)


def test_the_crd_holds_the_bounds_in_cel() -> None:
    spec = build_crd(WORKSHOP)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    props = spec["properties"]
    rule = props["duration"]["x-kubernetes-validations"][0]
    assert ">= 60.0" in rule["rule"] and "36500d" in rule["message"]
    assert "<= 3153600000.0" in props["expiryWarning"]["x-kubernetes-validations"][0]["rule"]
    assert props["duration"]["pattern"].count("{1,9}") == 2  # no number the API server could overflow on
    assert "timestamp('2200-01-01T00:00:00Z')" in props["startTime"]["x-kubernetes-validations"][0]["rule"]
    assert props["participantNames"]["items"]["x-kubernetes-validations"][0]["rule"] == "self != 'rstudio'"
    assert props["participantNames"]["x-kubernetes-list-type"] == "set"
    for quantity in (props["resources"]["properties"]["cpu"], props["storage"]["properties"]["size"]):
        assert quantity["x-kubernetes-validations"][0]["message"] == "must be more than 0"
