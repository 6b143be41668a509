"""Plugin discovery, isolation of broken plugins, and duplicate names."""

from __future__ import annotations

import importlib.metadata
import inspect
from pathlib import Path

import pytest

from ane_core import hookimpl, hookspecs, plugins
from ane_core.errors import UsageError
from ane_core.testing import ToyArchitecture


def test_toy_plugin_registers_architecture(toy_plugin):
    registry = plugins.collect_architectures()
    assert "toy" in registry.architectures
    assert registry.architectures["toy"].describe()["components"] == ["encoder"]
    assert not [p for p in registry.problems if "toy" in p]


def test_unknown_architecture_is_one_line_error(toy_plugin):
    with pytest.raises(UsageError) as info:
        plugins.get_architecture("nope")
    message = str(info.value)
    assert "unknown architecture 'nope'" in message and "toy" in message and "\n" not in message


def test_duplicate_architecture_name_is_reported_and_dropped(toy_plugin):
    class Twin:
        @hookimpl
        def register_architectures(self, register):
            register(ToyArchitecture())

    plugins.register_plugin(Twin(), name="toy-twin")
    try:
        registry = plugins.collect_architectures()
        assert "toy" not in registry.architectures
        assert any("'toy' is registered by more than one plugin" in p for p in registry.problems)
    finally:
        plugins.unregister_plugin("toy-twin")


def test_plugin_whose_hook_raises_is_reported(toy_plugin):
    class Broken:
        @hookimpl
        def register_architectures(self, register):
            raise RuntimeError("boom")

    plugins.register_plugin(Broken(), name="broken-hook")
    try:
        registry = plugins.collect_architectures()
        assert "toy" in registry.architectures
        assert any("broken-hook" in p and "boom" in p for p in registry.problems)
    finally:
        plugins.unregister_plugin("broken-hook")


def test_entry_point_that_fails_to_import_is_recorded(monkeypatch):
    broken = importlib.metadata.EntryPoint(
        name="broken", value="ane_no_such_module_xyz", group=plugins.ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(plugins.importlib.metadata, "entry_points", lambda group: [broken])
    monkeypatch.setattr(plugins, "_loaded", False)
    monkeypatch.setattr(plugins, "_plugin_infos", {})
    plugins.load_plugins()
    info = {i.name: i for i in plugins.plugin_infos()}["broken"]
    assert info.error.startswith("ModuleNotFoundError") and "ane_no_such_module_xyz" in info.error
    # asking for its architecture names the import failure, not "not installed"
    with pytest.raises(UsageError, match="plugin 'broken' failed to load: ModuleNotFoundError"):
        plugins.get_architecture("broken")


def test_ane_load_plugins_selects_entry_points(monkeypatch):
    eps = [
        importlib.metadata.EntryPoint(name=n, value=f"ane_missing_{n}", group="ane")
        for n in ("a", "b")
    ]
    monkeypatch.setattr(plugins.importlib.metadata, "entry_points", lambda group: eps)
    monkeypatch.setattr(plugins, "_loaded", False)
    monkeypatch.setattr(plugins, "_plugin_infos", {})
    monkeypatch.setenv("ANE_LOAD_PLUGINS", "b")
    plugins.load_plugins()
    assert {i.name for i in plugins.plugin_infos() if i.error} == {"b"}


def test_every_hook_has_docs_and_a_test():
    """datasette's rule: a hook without docs or a test is a hook nobody can rely on."""
    hooks = [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "ane_spec")
    ]
    assert hooks == ["register_architectures"]
    here = Path(__file__).parent
    test_plugins = [*here.glob("*.py"), here.parent / "src" / "ane_core" / "testing.py"]
    here = Path(__file__).parent
    test_plugins = [p for p in here.glob("*.py") if p.name != Path(__file__).name]
    test_plugins.append(here.parent / "src" / "ane_core" / "testing.py")
    tests = "".join(p.read_text() for p in test_plugins)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for hook in hooks:
        assert getattr(hookspecs, hook).__doc__
        assert f"def {hook}(" in tests, f"no test plugin implements {hook}"
        assert f"`{hook}" in readme, f"{hook} is not documented in ane-core's README"
