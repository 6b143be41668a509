"""``ane inspect`` and the findings summary of ``ane export``, on the in-process toy plugin."""

from __future__ import annotations

import json
import platform

import pytest
from ane_core import plugins
from ane_core.testing import ToyPlugin
from click.testing import CliRunner

from ane_bench.cli import cli

ANE_PACKAGE = "toy-small-encoder-ane-fp16.mlpackage"


@pytest.fixture
def toy():
    plugins.register_plugin(ToyPlugin(), name="toy-inspect")
    yield
    plugins.unregister_plugin("toy-inspect")


@pytest.fixture
def runner():
    return CliRunner()


def _export(runner, out, *args):
    result = runner.invoke(cli, ["export", "toy", "-o", str(out), "--quiet", *args])
    assert result.exit_code == 0, result.output
    return result


def test_export_prints_summary_and_writes_json_report(runner, toy, tmp_path):
    result = _export(runner, tmp_path)
    report_file = tmp_path / "toy-small-encoder-ane-fp16.inspect.json"
    assert "ANE check: no findings" in result.output and str(report_file) in result.output
    report = json.loads(report_file.read_text())
    assert report["findings"] == [] and report["path"] == str(tmp_path / ANE_PACKAGE)
    assert report["op_census"].get("cast", 0) == 0 and report["precision"] == "fp16"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ane-tmp-")]


def test_inspect_prints_every_section(runner, toy, tmp_path):
    _export(runner, tmp_path)
    result = runner.invoke(cli, ["inspect", str(tmp_path / ANE_PACKAGE)])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "x: FLOAT16 (1x64x1x32)  toy input" in text and "y: FLOAT16 (1x64x1x32)" in text
    assert "macOS13" in text and "precision fp16" in text and "ane.architecture: toy" in text
    assert "Op census" in text and "einsum 16" in text and "Largest tensors" in text
    assert "Findings: none" in text and "FLOPs" in text and "weights" in text
    if platform.system() != "Darwin":
        assert "Compute plan: needs macOS 14.4+" in text
    assert text.rstrip().splitlines()[-1].startswith("ANE check: no findings")


def test_inspect_json_matches_the_report_written_by_export(runner, toy, tmp_path):
    _export(runner, tmp_path)
    result = runner.invoke(cli, ["inspect", str(tmp_path / ANE_PACKAGE), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    written = json.loads((tmp_path / "toy-small-encoder-ane-fp16.inspect.json").read_text())
    assert printed == written


def test_inspect_stock_export_lists_findings_with_op_tensor_and_reason(runner, toy, tmp_path):
    _export(runner, tmp_path, "--arch", "stock")
    package = tmp_path / "toy-small-encoder-stock-fp16.mlpackage"
    report = json.loads(runner.invoke(cli, ["inspect", str(package), "--json"]).output)
    assert report["findings_by_rule"]["not-split-heads"] == 4
    assert sum(report["findings_by_rule"].values()) == 4
    for finding in report["findings"]:
        assert finding["op_type"] == "matmul" and finding["tensor"] and finding["reason"]
    text = runner.invoke(cli, ["inspect", str(package)]).output
    assert "attention not split per head [not-split-heads, slow]: 4" in text
    assert "batched over 4 heads" in text


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("missing.mlpackage", None, "does not exist"),
        ("model.mlmodel", "file", "is not an .mlpackage directory"),
        ("folder", "dir", "is not an .mlpackage directory"),
    ],
)
def test_bad_path_is_one_line_and_exit_2(runner, tmp_path, name, make, message):
    path = tmp_path / name
    if make == "file":
        path.write_text("not a model")
    elif make == "dir":
        path.mkdir()
    result = runner.invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output
