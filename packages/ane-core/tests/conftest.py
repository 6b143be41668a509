"""Fixtures: the toy plugin, registered in-process for one test at a time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ane_core import plugins
from ane_core.fuzzing import load_profile
from ane_core.skips import pytest_runtest_makereport  # noqa: F401 (the CI=true hook)
from ane_core.testing import ToyPlugin

load_profile()  # hypothesis: fast by default, fixed examples and a deadline under CI=true


@pytest.fixture
def toy_plugin() -> Iterator[ToyPlugin]:
    """Register the toy plugin for one test, and remove it afterwards."""
    plugin = ToyPlugin()
    plugins.register_plugin(plugin, name="toy-test")
    yield plugin
    plugins.unregister_plugin("toy-test")
