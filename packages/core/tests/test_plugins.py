from __future__ import annotations

from types import SimpleNamespace

import pytest
from pluggy import PluginValidationError

from troupe import hookimpl
from troupe.cli import main
from troupe.plugins import PluginError, collect_kinds, get_plugin_manager
from troupe_example import cost_center, greeting


def test_explicit_registration_without_entry_points() -> None:
    pm = get_plugin_manager(load_entrypoints=False, plugins=[greeting])
    assert [k.kind for k in collect_kinds(pm)] == ["Greeting"]


def test_entry_points_are_discovered() -> None:
    pm = get_plugin_manager()
    assert {"example", "cost-center"} <= {name for name, _ in pm.list_name_plugin()}


def test_block_list_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TROUPE_DISABLE_PLUGINS", "cost-center, example")
    pm = get_plugin_manager()
    names = {name for name, plugin in pm.list_name_plugin() if plugin is not None}
    assert "cost-center" not in names and "example" not in names


def test_check_pending_catches_a_misspelled_hook() -> None:
    class Typo:
        @hookimpl
        def troupe_build_resource(self) -> None:  # missing "s"
            pass

    with pytest.raises(PluginValidationError):
        get_plugin_manager(load_entrypoints=False, plugins=[Typo()])


def test_two_plugins_declaring_one_kind_clash() -> None:
    class Copy:
        @hookimpl
        def troupe_kinds(self) -> list[object]:
            return [greeting.GREETING]

    pm = get_plugin_manager(load_entrypoints=False, plugins=[greeting, Copy()])
    with pytest.raises(PluginError, match="declared twice"):
        collect_kinds(pm)


def test_unknown_operator_names_what_is_installed() -> None:
    pm = get_plugin_manager(load_entrypoints=False, plugins=[greeting, cost_center])
    with pytest.raises(PluginError, match=r"no installed plugin declares operator.*installed: example"):
        collect_kinds(pm, ["nosuch"])


def test_cli_plugins_lists_installed(capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    assert main(["plugins"]) == 0
    rows = {row["name"]: row for row in yaml.safe_load(capsys.readouterr().out)}
    assert rows["cost-center"]["kinds"] == [] and rows["cost-center"]["operators"] == []
    assert rows["example"]["kinds"] == ["Greeting.example.troupe.dev/v1alpha1"]
    # one operator served by a plugin per kind: each row names its own kind and the operator
    assert rows["catalyst-project"]["kinds"] == ["Project.catalyst.catalyst.dev/v1alpha1"]
    assert rows["catalyst-environment"]["operators"] == ["catalyst"]


def test_cli_crds_prints_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    assert main(["crds", "example"]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert [d["metadata"]["name"] for d in docs] == ["greetings.example.troupe.dev"]


def test_cli_unknown_operator_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds", "nosuch"]) == 2
    assert "nosuch" in capsys.readouterr().err


def test_kind_hooks_reach_the_declaring_plugin_and_extensions_only() -> None:
    from pydantic import BaseModel

    from troupe import KindSpec
    from troupe.plugins import kind_hooks

    class Spec(BaseModel):
        pass

    other_kind = KindSpec(
        operator="other", group="other.dev", version="v1", kind="Other", plural="others", spec_model=Spec
    )
    seen: list[str] = []

    class Other:
        @hookimpl
        def troupe_kinds(self) -> list[KindSpec]:
            return [other_kind]

        @hookimpl
        def troupe_validate(self, ctx: object) -> list[str]:
            seen.append("other")
            return []

    class Extension:
        @hookimpl
        def troupe_validate(self, ctx: object) -> list[str]:
            seen.append("extension")
            return []

    pm = get_plugin_manager(load_entrypoints=False, plugins=[greeting, Other(), Extension()])
    hooks = kind_hooks(pm)
    ctx = SimpleNamespace(spec=SimpleNamespace(name="Ada"))
    hooks["example.troupe.dev", "Greeting"].troupe_validate(ctx=ctx)
    assert seen == ["extension"]  # the other operator's hook never saw a Greeting
    seen.clear()
    hooks["other.dev", "Other"].troupe_validate(ctx=ctx)
    assert sorted(seen) == ["extension", "other"]


def test_hook_calls_are_traced_when_asked(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TROUPE_TRACE_HOOKS", "1")
    pm = get_plugin_manager(load_entrypoints=False, plugins=[greeting])
    with caplog.at_level("INFO", logger="troupe.hooks"):
        pm.hook.troupe_kinds()
    assert any("troupe_kinds" in r.getMessage() and "returned" in r.getMessage() for r in caplog.records)
