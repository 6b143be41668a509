"""The `ane` CLI through click's CliRunner, with the toy plugin registered in-process."""

from __future__ import annotations

import json
import os

import pytest
from ane_core import plugins
from ane_core.testing import ToyPlugin
from click.testing import CliRunner

from ane_bench.cli import cli


@pytest.fixture
def toy():
    plugins.register_plugin(ToyPlugin(), name="toy-cli")
    yield
    plugins.unregister_plugin("toy-cli")


@pytest.fixture
def runner():
    return CliRunner()


def test_list_without_architectures_is_not_an_error(runner, monkeypatch):
    monkeypatch.setenv("ANE_LOAD_PLUGINS", "")
    result = runner.invoke(cli, ["list"])
    assert result.exit_code == 0, result.output


def test_list_shows_registered_architecture(runner, toy):
    result = runner.invoke(cli, ["list", "--json"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    toy_arch = next(a for a in listing["architectures"] if a["name"] == "toy")
    assert toy_arch["sizes"] == ["small"] and toy_arch["components"] == ["encoder"]
    assert any(p["name"] == "toy-cli" for p in listing["plugins"])


def test_export_writes_named_package_and_reports_phases(runner, toy, tmp_path):
    result = runner.invoke(cli, ["export", "toy", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    target = tmp_path / "toy-small-encoder-ane-fp16.mlpackage"
    assert target.is_dir()
    assert str(target) in result.output and "0 cast" in result.output
    for phase in ("build", "trace", "convert", "save"):
        assert f": {phase} ..." in result.output
    assert sorted(os.listdir(tmp_path)) == sorted(
        [target.name, "toy-small-encoder-ane-fp16.inspect.json"]
    )


def test_export_refuses_to_overwrite_without_force(runner, toy, tmp_path):
    assert runner.invoke(cli, ["export", "toy", "-o", str(tmp_path), "--quiet"]).exit_code == 0
    again = runner.invoke(cli, ["export", "toy", "-o", str(tmp_path), "--quiet"])
    assert again.exit_code == 2
    assert "already exists" in again.output and "--force" in again.output
    forced = runner.invoke(cli, ["export", "toy", "-o", str(tmp_path), "--quiet", "--force"])
    assert forced.exit_code == 0, forced.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "nope"], "unknown architecture 'nope'"),
        (["export", "toy", "--component", "decoder"], "no component 'decoder'"),
        (["export", "toy", "--arch", "fast"], "no --arch 'fast'"),
        (["export", "toy", "--precision", "int3"], "unknown precision 'int3'"),
        (["export", "toy", "--target", "macOS11"], "too old"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(runner, toy, tmp_path, args, message):
    result = runner.invoke(cli, [*args, "-o", str(tmp_path)] if args[0] == "export" else args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output
    assert os.listdir(tmp_path) == []
