"""The namespace rule: <team>-<project>-<environment>, truncated with a stable hash past 63 characters."""

from __future__ import annotations

import hashlib
import re

import pytest

from troupe_catalyst.names import build_job_name, namespace_name, release_name

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_the_seed_hierarchy_is_kept_as_is() -> None:
    assert namespace_name("my-team", "my-project", "pr-123") == "my-team-my-project-pr-123"


def test_exactly_63_characters_is_kept_and_64_is_hashed() -> None:
    env = "e" * (63 - len("t-p-"))
    assert namespace_name("t", "p", env) == f"t-p-{env}"
    long = namespace_name("t", "p", env + "x")
    digest = hashlib.sha256(f"t/p/{env}x".encode()).hexdigest()[:8]
    assert len(long) == 63 and long.endswith(f"-{digest}") and long.startswith("t-p-eee")


def test_a_70_character_environment_gives_a_valid_stable_name() -> None:
    env = "pr-" + "a" * 67
    first = namespace_name("my-team", "my-project", env)
    assert len(env) == 70 and len(first) <= 63 and DNS_LABEL.match(first)
    assert first == namespace_name("my-team", "my-project", env)  # same input, same name
    assert first != namespace_name("my-team", "my-project", env[:-1] + "b")  # same prefix, other hash


def test_a_cut_never_leaves_a_dash_before_the_hash() -> None:
    # the 54th character of the join is a dash: it is dropped, not doubled
    team = "a" * 53
    name = namespace_name(team, "b", "c" * 20)
    assert "--" not in name and DNS_LABEL.match(name) and len(name) <= 63


@pytest.mark.parametrize(
    ("team", "project", "env"),
    [("My_Team", "proj", "pr-1"), ("team.x", "p", "e"), ("t", "p", "Feature/Login")],
)
def test_characters_a_namespace_cannot_hold_are_replaced_and_hashed(
    team: str, project: str, env: str
) -> None:
    name = namespace_name(team, project, env)
    assert DNS_LABEL.match(name) and len(name) <= 63 and re.search(r"-[0-9a-f]{8}$", name)


def test_inputs_that_clean_alike_still_differ() -> None:
    assert namespace_name("team.x", "p", "e") != namespace_name("team_x", "p", "e")


def test_release_and_job_names_are_dns_labels() -> None:
    assert release_name("pr-123") == "pr-123"
    assert len(release_name("x" * 70)) <= 53 and DNS_LABEL.match(release_name("x" * 70))
    assert build_job_name("a1b2c3d4") == "build-a1b2c3d4"
    assert DNS_LABEL.match(build_job_name("a1b2c3d4...")) and len(build_job_name("A" * 128)) <= 63
