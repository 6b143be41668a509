"""``ane export --stateful``: refused early with one line where it cannot work (whisper's
stateful decoder is tested with the plugin, in the repository's tests/)."""

from __future__ import annotations

import os

import pytest
from ane_core import plugins
from ane_core.testing import ToyPlugin
from click.testing import CliRunner

from ane_bench.cli import cli


@pytest.fixture
def toy():
    plugins.register_plugin(ToyPlugin(), name="toy-stateful")
    yield
    plugins.unregister_plugin("toy-stateful")


def _one_line_refusal(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output


def test_stateful_without_a_stateful_component_is_one_line(toy, tmp_path):
    args = ["export", "toy", "--stateful", "--target", "macOS15", "-o", str(tmp_path)]
    _one_line_refusal(CliRunner().invoke(cli, args), "no stateful variant")
    assert os.listdir(tmp_path) == []
