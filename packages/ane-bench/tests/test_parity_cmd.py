"""`ane parity` through click's CliRunner on the toy architecture (no model plugin needed)."""

from __future__ import annotations

import json
import sys

import pytest
from ane_core import plugins
from ane_core.testing import ToyPlugin
from click.testing import CliRunner

from ane_bench.cli import cli


@pytest.fixture
def toy():
    plugins.register_plugin(ToyPlugin(), name="toy-parity")
    yield
    plugins.unregister_plugin("toy-parity")


def invoke(*args: str):
    return CliRunner().invoke(cli, ["parity", "toy", "--quiet", *args])


def test_parity_table_and_json_for_every_model_and_precision(toy, tmp_path):
    report_path = tmp_path / "parity.json"
    result = invoke("--json", str(report_path), "--packages", str(tmp_path / "pkgs"))
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["passed"] is True
    seen = {(row["model"], row["precision"]) for row in report["rows"]}
    assert seen == {("ane-pytorch", "fp32"), ("package-mil", "fp32"), ("package-mil", "fp16")}
    for row in report["rows"]:
        assert row["case"] == "random" and row["output"] == "y"
        floor = 35.0 if row["precision"] == "fp16" else 90.0
        assert row["min_psnr_db"] == floor and row["psnr_db"] >= floor
    assert "package-mil" in result.output and "PSNR dB" in result.output
    assert sorted(p.name for p in (tmp_path / "pkgs").iterdir() if p.suffix == ".mlpackage") == [
        "toy-small-encoder-ane-fp16.mlpackage",
        "toy-small-encoder-ane-fp32.mlpackage",
    ]


def test_missed_floor_exits_nonzero_and_says_so(toy):
    result = invoke("--precision", "fp16", "--min-psnr-fp16", "200")
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output
    assert "below their PSNR floor" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "tpu"], "unknown backend 'tpu'"),
        (["--precision", "int3"], "unknown precision 'int3'"),
        (["--compute-units", "gpu_only"], "unknown compute units"),
        (["--component", "decoder"], "no component 'decoder'"),
    ],
)
def test_bad_options_are_one_line(toy, args, message):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output


@pytest.mark.skipif(sys.platform == "darwin", reason="platform: Core ML runs on macOS")
def test_coreml_backend_off_macos_is_one_line(toy):
    result = invoke("--backend", "coreml", "--precision", "fp32")
    assert result.exit_code == 2, result.output
    assert "needs macOS" in result.output
