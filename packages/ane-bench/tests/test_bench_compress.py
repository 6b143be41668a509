"""``ane bench --compress``: weight compression is one more axis of the matrix; each row
records its compression, and its package size and inspect summary are those of the
compressed package on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ane_core import plugins
from ane_core.compress import COMPRESSIONS
from ane_core.errors import UsageError
from ane_core.inspect import inspect_package
from ane_core.package_size import bytes_on_disk
from ane_core.testing import ToyArchitecture, ToyPlugin
from click.testing import CliRunner

from ane_bench.bench.matrix import build_matrix
from ane_bench.cli import cli


@pytest.fixture(scope="module")
def compressed_run(tmp_path_factory):
    plugins.register_plugin(ToyPlugin(), name="toy-bench-compress")
    out = tmp_path_factory.mktemp("bench-compress")
    args = ["bench", "toy", "--arch", "ane", "--precision", "fp16", "-o", str(out)]
    args += ["--compress", "none", "--compress", "palettize4", "--no-latency", "--keep-packages"]
    try:
        result = CliRunner().invoke(cli, args)
    finally:
        plugins.unregister_plugin("toy-bench-compress")
    assert result.exit_code == 0, result.output
    return out, result.output, json.loads((out / "results.json").read_text())


def test_one_export_per_compression_named_and_recorded(compressed_run):
    _, output, results = compressed_run
    assert results["settings"]["compressions"] == ["none", "palettize4"]
    assert [(r["compression"], Path(r["package"]).name) for r in results["exports"]] == [
        ("none", "toy-small-encoder-ane-fp16.mlpackage"),
        ("palettize4", "toy-small-encoder-ane-fp16-pal4.mlpackage"),
    ]
    assert [p["compression"] for p in results["export_processes"]] == ["none", "palettize4"]
    assert "export toy small ane fp16 palettize4: encoder" in output
    assert "compress" in results["exports"][1]["phases_s"]


def test_size_and_inspect_summary_are_the_compressed_packages(compressed_run):
    _, _, results = compressed_run
    plain, palettes = results["exports"]
    for row in (plain, palettes):
        report = inspect_package(row["package"], with_compute_plan=False)
        assert row["package_bytes"] == bytes_on_disk(row["package"])
        assert row["inspect"]["weight_bytes"] == report.cost.weight_bytes > 0
        assert row["inspect"]["op_counts"] == dict(report.op_census.most_common())
    assert palettes["inspect"]["op_counts"]["constexpr_lut_to_dense"] > 0
    assert palettes["package_bytes"] < plain["package_bytes"]
    assert palettes["inspect"]["weight_bytes"] < plain["inspect"]["weight_bytes"] / 2


def test_markdown_has_a_compression_column(compressed_run):
    out, _, _ = compressed_run
    markdown = (out / "results.md").read_text()
    assert "| compress |" in markdown and "| palettize4 |" in markdown


def test_matrix_compression_axis():
    toy = ToyArchitecture()
    axes = {"sizes": (), "variants": ("ane",), "precisions": ("fp16",), "components": ()}
    assert [j.compression.name for j in build_matrix(toy, **axes).export_jobs] == ["none"]
    matrix = build_matrix(toy, **axes, compressions=("int8", "palettize6", "int8"))
    assert matrix.compressions == (COMPRESSIONS["int8"], COMPRESSIONS["palettize6"])
    assert [j.label for j in matrix.export_jobs] == [
        "small ane fp16 int8",
        "small ane fp16 palettize6",
    ]
    with pytest.raises(UsageError, match="unknown --compress 'int3'"):
        build_matrix(toy, **axes, compressions=("int3",))
