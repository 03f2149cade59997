import pytest

from troupe.engine.selector import SelectorError, parse_selector


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("", {}, True),
        ("troupe.dev/tilt=troupe-tilt", {"troupe.dev/tilt": "troupe-tilt"}, True),
        ("troupe.dev/tilt=troupe-tilt", {"troupe.dev/tilt": "other"}, False),
        ("troupe.dev/tilt=troupe-tilt", {}, False),
        ("a==b", {"a": "b"}, True),
        ("a!=b", {}, True),  # an absent key is not equal to b, as in Kubernetes
        ("a!=b", {"a": "b"}, False),
        ("a", {"a": ""}, True),
        ("a", {}, False),
        ("!a", {}, True),
        ("!a", {"a": "x"}, False),
        ("env in (dev, qa),tier notin (db)", {"env": "qa", "tier": "web"}, True),
        ("env in (dev, qa),tier notin (db)", {"env": "qa", "tier": "db"}, False),
        ("env in (dev,qa)", {"env": "prod"}, False),
        ("a=b, c", {"a": "b"}, False),
        ("a=", {"a": ""}, True),
    ],
)
def test_selector_matches_as_kubernetes_does(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_selector(selector)(labels) is matches


@pytest.mark.parametrize("selector", ["a=b=c", "a in b", "=b", "a,,b", "a > 1", "in (x)", "a=b c"])
def test_bad_selector_names_the_requirement(selector: str) -> None:
    with pytest.raises(SelectorError, match="not a label selector requirement"):
        parse_selector(selector)
