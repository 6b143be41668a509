"""``ane parity --compress``: per-setting rows with package size and their own floor, and the
task-output table against the uncompressed package, on the toy architecture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ane_core import hookimpl, plugins
from ane_core.architecture import Architecture
from ane_core.mil import load_spec
from ane_core.package_size import bytes_on_disk
from ane_core.testing import ToyArchitecture, ToyPlugin
from click.testing import CliRunner

from ane_bench.cli import cli


class ToyTask(ToyArchitecture):
    """The toy with a task: its 'output' for a file is whether the package's weights are
    palettized (read from the package itself), so palettes change it and int8 does not."""

    name = "toy-task"
    calls: list[tuple[dict[str, str], tuple[str, ...], str]] = []

    def task_outputs(self, weights, packages, files, precision):
        assert all(Path(p).is_dir() for p in packages.values())  # exported before asked
        self.calls.append(
            ({k: Path(v).name for k, v in packages.items()}, tuple(files), precision.value)
        )
        meta = dict(load_spec(packages["encoder"]).description.metadata.userDefined)
        text = "palettes" if meta["ane.compression"].startswith("palettize") else "dense"
        return {file: f"{Path(file).name}: {text}" for file in files}


class ToyTaskPlugin:
    @hookimpl
    def register_architectures(self, register):
        register(ToyTask())


@pytest.fixture
def toys():
    plugins.register_plugin(ToyPlugin(), name="toy-parity-compress")
    plugins.register_plugin(ToyTaskPlugin(), name="toy-task-parity-compress")
    ToyTask.calls.clear()
    yield
    plugins.unregister_plugin("toy-parity-compress")
    plugins.unregister_plugin("toy-task-parity-compress")


def invoke(arch: str, *args: str):
    return CliRunner().invoke(cli, ["parity", arch, "--quiet", "--precision", "fp16", *args])


def test_rows_per_compression_with_size_and_own_floor(toys, tmp_path):
    report_path, packages = tmp_path / "parity.json", tmp_path / "pkgs"
    args = ["--compress", "int8", "--compress", "palettize4", "--min-psnr-compressed", "12"]
    result = invoke("toy", *args, "--json", str(report_path), "--packages", str(packages))
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["compressions"] == ["none", "int8", "palettize4"]  # none: the baseline
    assert report["min_psnr_compressed_db"] == 12.0
    rows = {r["compression"]: r for r in report["rows"] if r["model"] == "package-mil"}
    assert set(rows) == {"none", "int8", "palettize4"}
    assert rows["none"]["min_psnr_db"] == 35.0 and rows["int8"]["min_psnr_db"] == 12.0
    suffix = {"none": "", "int8": "-int8", "palettize4": "-pal4"}
    for name, row in rows.items():
        package = packages / f"toy-small-encoder-ane-fp16{suffix[name]}.mlpackage"
        assert row["package_bytes"] == bytes_on_disk(package)
    assert rows["palettize4"]["package_bytes"] < rows["int8"]["package_bytes"]
    assert rows["int8"]["package_bytes"] < rows["none"]["package_bytes"]
    assert rows["none"]["psnr_db"] > rows["int8"]["psnr_db"] > rows["palettize4"]["psnr_db"]
    pytorch = [r for r in report["rows"] if r["model"] == "ane-pytorch"]
    assert [r["package_bytes"] for r in pytorch] == [None]
    assert report["task_outputs"] == []  # the toy has no task
    assert "palettize4" in result.output and "MiB" in result.output


def test_compressed_rows_are_reported_without_a_floor_unless_asked(toys, tmp_path):
    report_path = tmp_path / "parity.json"
    result = invoke("toy", "--compress", "palettize4", "--json", str(report_path))
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["min_psnr_compressed_db"] is None
    (row,) = [r for r in report["rows"] if r["compression"] == "palettize4"]
    assert row["min_psnr_db"] is None and row["passed"] is True
    assert row["psnr_db"] < 35.0  # under the FP16 floor, yet not a failure


def test_compressed_floor_fails_the_run_when_asked(toys):
    result = invoke("toy", "--compress", "palettize4", "--min-psnr-compressed", "200")
    assert result.exit_code == 1, result.output
    assert "1 of 3 comparisons below their PSNR floor" in result.output


def test_task_outputs_compared_with_the_uncompressed_package(toys, tmp_path):
    report_path = tmp_path / "parity.json"
    clip = tmp_path / "clip.bin"
    clip.write_bytes(b"x")
    args = ["--compress", "int8", "--compress", "palettize4", "--min-psnr-compressed", "12"]
    result = invoke("toy-task", *args, "--input", str(clip), "--json", str(report_path))
    assert result.exit_code == 0, result.output
    baseline, int8, pal4 = ToyTask.calls
    assert baseline == (
        {"encoder": "toy-task-small-encoder-ane-fp16.mlpackage"},
        (str(clip),),
        "fp16",
    )
    assert int8[0] == {"encoder": "toy-task-small-encoder-ane-fp16-int8.mlpackage"}
    assert pal4[0] == {"encoder": "toy-task-small-encoder-ane-fp16-pal4.mlpackage"}
    task = {r["compression"]: r for r in json.loads(report_path.read_text())["task_outputs"]}
    assert set(task) == {"int8", "palettize4"}
    assert task["int8"]["unchanged"] and task["int8"]["output"] == "clip.bin: dense"
    assert not task["palettize4"]["unchanged"]
    assert task["palettize4"]["output"] == "clip.bin: palettes"
    assert task["palettize4"]["baseline"] == "clip.bin: dense"
    assert "fp16 int8 clip.bin: same" in result.output
    assert "fp16 palettize4 clip.bin: CHANGED" in result.output


def test_no_task_table_without_compression(toys, tmp_path):
    clip = tmp_path / "clip.bin"
    clip.write_bytes(b"x")
    result = invoke("toy-task", "--input", str(clip))
    assert result.exit_code == 0, result.output
    assert ToyTask.calls == [] and "same" not in result.output


def test_unknown_compression_is_one_line(toys):
    result = invoke("toy", "--compress", "int3")
    assert result.exit_code == 2
    assert "unknown --compress 'int3'" in result.output


def test_architecture_default_has_no_task():
    assert Architecture.task_outputs(ToyArchitecture(), None, {}, ["a"], None) is None
