"""``ane export --compress``: the option reaches the pipeline and bad values fail early."""

from __future__ import annotations

import pytest
from ane_core import plugins
from ane_core.mil import load_spec, op_counts
from ane_core.testing import ToyPlugin
from click.testing import CliRunner

from ane_bench.cli import cli


@pytest.fixture
def toy():
    plugins.register_plugin(ToyPlugin(), name="toy-compress-cli")
    yield
    plugins.unregister_plugin("toy-compress-cli")


def test_export_palettize4_writes_suffixed_compressed_package(toy, tmp_path):
    args = ["export", "toy", "-o", str(tmp_path), "--quiet", "--compress", "palettize4"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    package = tmp_path / "toy-small-encoder-ane-fp16-pal4.mlpackage"
    assert str(package) in result.output
    assert op_counts(package)["constexpr_lut_to_dense"] > 0
    meta = dict(load_spec(package).description.metadata.userDefined)
    assert meta["ane.compression"] == "palettize4 (kmeans, per_tensor)"


def test_unknown_compression_is_a_one_line_usage_error(toy, tmp_path):
    args = ["export", "toy", "-o", str(tmp_path), "--compress", "int3"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "unknown --compress 'int3'" in result.output and "palettize4" in result.output
    assert not list(tmp_path.iterdir())  # refused before anything was built
