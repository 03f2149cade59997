"""The plugin manager: discovery through the ``troupe`` entry-point group, explicit registration for tests."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, cast

import pluggy

from troupe import hookspecs
from troupe.kinds import KindSpec

ENTRY_POINT_GROUP = "troupe"
#: Comma-separated plugin (entry-point) names that are never loaded, e.g. a misbehaving extension.
BLOCK_ENV = "TROUPE_DISABLE_PLUGINS"
#: Set to 1 to log every hook call with its arguments and result (logger ``troupe.hooks``, level INFO).
TRACE_ENV = "TROUPE_TRACE_HOOKS"
#: The hooks that concern one kind: called on the plugin that declared it and on extension plugins.
KIND_HOOKS = (
    "troupe_validate",
    "troupe_build_resources",
    "troupe_mutate_resource",
    "troupe_aggregate_status",
    "troupe_status_changed",
    "troupe_finalize",
)

trace_logger = logging.getLogger("troupe.hooks")


class PluginError(Exception):
    """A plugin is missing, broken, or declares something that clashes with another plugin."""


def blocked_plugins() -> set[str]:
    return {name.strip() for name in os.environ.get(BLOCK_ENV, "").split(",") if name.strip()}


def get_plugin_manager(
    *, load_entrypoints: bool = True, plugins: Iterable[object] = ()
) -> pluggy.PluginManager:
    """A plugin manager with the Troupe hook specs.

    :param load_entrypoints: load every plugin installed under the ``troupe`` entry-point group (minus
        those blocked by ``TROUPE_DISABLE_PLUGINS``); tests pass False and register what they need.
    :param plugins: extra plugin objects (modules or instances) to register, in order.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    blocked = blocked_plugins()
    for name in blocked:
        pm.set_blocked(name)
    if load_entrypoints:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in blocked or pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken third-party install must say which one it is
                raise PluginError(f"cannot load plugin {ep.name!r} ({ep.value}): {exc}") from exc
            pm.register(plugin, name=ep.name)
    for plugin in plugins:
        pm.register(plugin)
    pm.check_pending()
    if os.environ.get(TRACE_ENV) == "1":
        pm.add_hookcall_monitoring(_trace_before, _trace_after)
    return pm


def _trace_before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
    trace_logger.info("%s(%s) -> %s", hook_name, _brief(kwargs), ", ".join(i.plugin_name for i in impls))


def _trace_after(
    outcome: pluggy.Result[Any], hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]
) -> None:
    exc = outcome.exception
    trace_logger.info("%s returned %s", hook_name, f"error {exc!r}" if exc else _brief(outcome.get_result()))


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 400 else text[:400] + "..."


def _declarations(pm: pluggy.PluginManager) -> list[tuple[object, list[KindSpec]]]:
    """Each plugin implementing ``troupe_kinds`` with the kinds it declares."""
    declared: list[tuple[object, list[KindSpec]]] = []
    for impl in pm.hook.troupe_kinds.get_hookimpls():
        kinds = cast("list[KindSpec] | None", impl.function())
        declared.append((impl.plugin, list(kinds or [])))
    return declared


@dataclass(frozen=True)
class KindHooks:
    """The hooks of one kind, bound to the plugin that declared it plus every extension plugin.

    Extension plugins are those that declare no kind (a third party labelling every operator's children);
    an operator's hooks never see another operator's objects, so they need no ``if ctx.kind is ...`` guard.
    """

    troupe_validate: pluggy.HookCaller
    troupe_build_resources: pluggy.HookCaller
    troupe_mutate_resource: pluggy.HookCaller
    troupe_aggregate_status: pluggy.HookCaller
    troupe_status_changed: pluggy.HookCaller
    troupe_finalize: pluggy.HookCaller


def kind_hooks(pm: pluggy.PluginManager) -> dict[tuple[str, str], KindHooks]:
    """:class:`KindHooks` of every declared kind, by (group, kind)."""
    declarations = _declarations(pm)
    routed = {}
    for plugin, kinds in declarations:
        others = [p for p, declared in declarations if declared and p is not plugin]
        for kind in kinds:
            routed[kind.group, kind.kind] = KindHooks(
                **{name: pm.subset_hook_caller(name, remove_plugins=others) for name in KIND_HOOKS}
            )
    return routed


def collect_kinds(pm: pluggy.PluginManager, operators: Iterable[str] | None = None) -> list[KindSpec]:
    """All kinds the registered plugins declare, optionally only those of the named operators.

    Raises :class:`PluginError` when two plugins declare the same kind or an operator is unknown.
    """
    kinds = [k for _, declared in _declarations(pm) for k in declared]
    seen: dict[tuple[str, str], KindSpec] = {}
    for kind in kinds:
        key = (kind.group, kind.kind)
        if key in seen:
            raise PluginError(
                f"{kind.kind}.{kind.group} is declared twice (operators {seen[key].operator!r} and "
                f"{kind.operator!r})"
            )
        seen[key] = kind
    if operators is None:
        return kinds
    wanted = list(operators)
    known = {k.operator for k in kinds}
    missing = [op for op in wanted if op not in known]
    if missing:
        raise PluginError(
            f"no installed plugin declares operator(s) {', '.join(missing)}; installed: "
            f"{', '.join(sorted(known)) or 'none'} (see `troupe plugins`)"
        )
    return [k for k in kinds if k.operator in wanted]


def describe_plugins(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """One row per registered plugin: name, distribution and version, the operators and kinds it declares
    (an operator may be served by several plugins, one per kind), hooks implemented."""
    dists = {ep.name: ep.dist for ep in entry_points(group=ENTRY_POINT_GROUP)}
    declared = {id(plugin): kinds for plugin, kinds in _declarations(pm)}
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue
        dist = dists.get(name)
        kinds = declared.get(id(plugin), [])
        rows.append(
            {
                "name": name,
                "distribution": dist.name if dist else "",
                "version": dist.version if dist else "",
                "operators": sorted({k.operator for k in kinds}),
                "kinds": [f"{k.kind}.{k.group}/{k.version}" for k in kinds],
                "hooks": sorted(h.name for h in pm.get_hookcallers(plugin) or []),
            }
        )
    return rows
