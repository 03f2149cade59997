"""The plugin manager: discovery through the ``troupe`` entry-point group, explicit registration for tests."""

from __future__ import annotations

import os
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

import pluggy

from troupe import hookspecs
from troupe.kinds import KindSpec

ENTRY_POINT_GROUP = "troupe"
#: Comma-separated plugin (entry-point) names that are never loaded, e.g. a misbehaving extension.
BLOCK_ENV = "TROUPE_DISABLE_PLUGINS"


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
    return pm


def collect_kinds(pm: pluggy.PluginManager, operators: Iterable[str] | None = None) -> list[KindSpec]:
    """All kinds the registered plugins declare, optionally only those of the named operators.

    Raises :class:`PluginError` when two plugins declare the same kind or an operator is unknown.
    """
    kinds: list[KindSpec] = [k for batch in pm.hook.troupe_kinds() for k in batch or []]
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
    """One row per registered plugin: name, distribution and version, hooks implemented."""
    dists = {ep.name: ep.dist for ep in entry_points(group=ENTRY_POINT_GROUP)}
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue
        dist = dists.get(name)
        rows.append(
            {
                "name": name,
                "distribution": dist.name if dist else "",
                "version": dist.version if dist else "",
                "hooks": sorted(h.name for h in pm.get_hookcallers(plugin) or []),
            }
        )
    return rows
