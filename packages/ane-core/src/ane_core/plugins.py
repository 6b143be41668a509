"""Plugin loading: entry points of group ``ane`` become architectures.

Why this shape (after simonw/llm and datasette): installing a package is all it takes to add
an architecture, and a plugin that fails to import is reported by ``ane list`` instead of
breaking every command. Loading is lazy and happens once.

Environment switches:
- ``ANE_LOAD_PLUGINS``: comma-separated entry-point names to load; empty loads none. Unset
  loads all installed plugins.
- ``ANE_TRACE_HOOKS=1``: print every hook call and result to stderr (pluggy's hook monitoring).
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
import traceback
from dataclasses import dataclass, field

import pluggy

from ane_core import PROJECT_NAME, hookspecs
from ane_core.architecture import Architecture
from ane_core.errors import UsageError

ENTRY_POINT_GROUP = PROJECT_NAME


@dataclass
class PluginInfo:
    """One entry point as ``ane list`` shows it: loaded, or broken with its one-line error."""

    name: str
    module: str
    version: str | None
    hooks: list[str] = field(default_factory=list)
    error: str | None = None


pm = pluggy.PluginManager(PROJECT_NAME)
pm.add_hookspecs(hookspecs)

_loaded = False
_plugin_infos: dict[str, PluginInfo] = {}


def _wanted(name: str) -> bool:
    setting = os.environ.get("ANE_LOAD_PLUGINS")
    if setting is None:
        return True
    return name in {part.strip() for part in setting.split(",") if part.strip()}


def _one_line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def load_plugins() -> None:
    """Import every wanted ``ane`` entry point once; a failing one is recorded, not raised."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    if os.environ.get("ANE_TRACE_HOOKS"):
        pm.trace.root.setwriter(lambda message: sys.stderr.write(message))
        pm.enable_tracing()
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if not _wanted(entry_point.name) or pm.get_plugin(entry_point.name) is not None:
            continue
        dist = getattr(entry_point, "dist", None)
        info = PluginInfo(
            name=entry_point.name,
            module=entry_point.value,
            version=dist.version if dist is not None else None,
        )
        _plugin_infos[entry_point.name] = info
        try:
            module = entry_point.load()
            pm.register(module, name=entry_point.name)
        except Exception as error:  # a broken plugin must not break the CLI
            info.error = _one_line(error)
            if os.environ.get("ANE_DEBUG"):
                traceback.print_exc()
            continue
        info.hooks = sorted(hook.name for hook in pm.get_hookcallers(module) or [])
    pm.check_pending()


def plugin_infos() -> list[PluginInfo]:
    """Installed plugins (entry points and in-process registrations), broken ones included."""
    load_plugins()
    infos = dict(_plugin_infos)
    for name, plugin in pm.list_name_plugin():
        if name not in infos:
            infos[name] = PluginInfo(
                name=name,
                module=getattr(plugin, "__name__", type(plugin).__name__),
                version=None,
                hooks=sorted(hook.name for hook in pm.get_hookcallers(plugin) or []),
            )
    return sorted(infos.values(), key=lambda info: info.name)


@dataclass
class Registry:
    """Architectures by name, plus the problems found while collecting them."""

    architectures: dict[str, Architecture]
    problems: list[str]


def collect_architectures() -> Registry:
    """Call ``register_architectures`` on every plugin and gather the results.

    Two registrations of one name are both dropped and reported: silently picking one would
    make exports depend on plugin load order.
    """
    load_plugins()
    found: dict[str, list[tuple[str, Architecture]]] = {}
    problems: list[str] = []
    for plugin_name, plugin in pm.list_name_plugin():
        if getattr(plugin, "register_architectures", None) is None:
            continue
        registered: list[Architecture] = []
        try:
            _call_register(plugin, registered.append)
        except Exception as error:
            problems.append(
                f"plugin {plugin_name}: register_architectures failed: {_one_line(error)}"
            )
            continue
        for architecture in registered:
            if not isinstance(architecture, Architecture):
                problems.append(
                    f"plugin {plugin_name} registered {architecture!r}, which is not an "
                    "ane_core.architecture.Architecture"
                )
                continue
            found.setdefault(architecture.name, []).append((plugin_name, architecture))
    architectures: dict[str, Architecture] = {}
    for name, entries in found.items():
        if len(entries) > 1:
            owners = ", ".join(plugin for plugin, _ in entries)
            problems.append(
                f"architecture {name!r} is registered by more than one plugin ({owners}); "
                f"uninstall one of them or load only one with ANE_LOAD_PLUGINS"
            )
            continue
        architectures[name] = entries[0][1]
    return Registry(architectures=dict(sorted(architectures.items())), problems=problems)


def _call_register(plugin: object, register) -> None:
    """Call one plugin's hook through pluggy, so that tracing sees it and a failure is
    attributed to the plugin that raised."""
    others = [p for p in pm.get_plugins() if p is not plugin]
    pm.subset_hook_caller("register_architectures", remove_plugins=others)(register=register)


def get_architecture(name: str) -> Architecture:
    """The architecture called ``name``, or a one-line error listing the installed ones."""
    registry = collect_architectures()
    if name in registry.architectures:
        return registry.architectures[name]
    known = ", ".join(registry.architectures) or "none installed"
    broken = [info for info in _plugin_infos.values() if info.error]
    if broken:  # the plugin may be installed but fail to import: say so, not "not installed"
        failures = "; ".join(
            f"plugin {info.name!r} failed to load: {info.error}" for info in broken
        )
        raise UsageError(
            f"unknown architecture {name!r} (installed: {known}; {failures}).",
            "Fix or reinstall the failing plugin (`ane list` shows it).",
        )
    raise UsageError(
        f"unknown architecture {name!r} (installed: {known}).",
        "Run `ane list` to see plugins, or install the plugin package that provides it.",
    )


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register an in-process plugin (tests, notebooks). Returns the name it got."""
    load_plugins()
    registered = pm.register(plugin, name=name)
    pm.check_pending()
    return registered if isinstance(registered, str) else (name or str(id(plugin)))


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered with :func:`register_plugin`."""
    pm.unregister(name=name)
