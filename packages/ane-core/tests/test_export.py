"""The conversion pipeline end to end on the toy plugin: ane-core needs no other package."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch

from ane_core import plugins
from ane_core.errors import OutputError, UsageError
from ane_core.export import export_component
from ane_core.metrics import psnr
from ane_core.mil import load_spec, op_counts
from ane_core.save import TEMP_PREFIX, atomic_write_dir
from ane_core.targets import Precision, parse_target


def _export(tmp_path, variant="ane", precision=Precision.FP16, force=False):
    arch = plugins.get_architecture("toy")
    weights = arch.load_weights("small", None)
    return export_component(
        arch,
        size="small",
        component="encoder",
        variant=variant,
        weights=weights,
        precision=precision,
        target=parse_target("macOS13", precision=precision),
        output_dir=tmp_path,
        force=force,
    )


def test_ane_and_stock_toy_modules_agree(toy_plugin):
    arch = plugins.get_architecture("toy")
    weights = arch.load_weights("small", None)
    ane, stock = arch.build("encoder", "ane", weights), arch.build("encoder", "stock", weights)
    x = stock.example_inputs[0]
    with torch.no_grad():
        ref = stock.module(x)
        out = ane.module(x.transpose(1, 2).unsqueeze(2)).squeeze(2).transpose(1, 2)
    assert psnr(ref, out) > 100


def test_fp16_export_has_fp16_io_metadata_and_no_cast(toy_plugin, tmp_path):
    result = _export(tmp_path)
    assert result.path.name == "toy-small-encoder-ane-fp16.mlpackage"
    assert result.path.is_dir()
    assert set(result.timings) == {"build", "trace", "convert", "save"}
    assert result.cast_count == 0 and op_counts(result.path)["cast"] == 0
    spec = load_spec(result.path)
    assert [i.name for i in spec.description.input] == ["x"]
    assert spec.description.input[0].type.multiArrayType.dataType == 65552  # FLOAT16
    assert spec.description.output[0].type.multiArrayType.dataType == 65552
    meta = dict(spec.description.metadata.userDefined)
    assert meta["ane.architecture"] == "toy" and meta["ane.precision"] == "fp16"
    assert meta["ane.weights_source"] == "random(seed=0)" and "ane.version.coremltools" in meta
    assert spec.description.input[0].shortDescription == "toy input"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(TEMP_PREFIX)]


def test_fp32_export_keeps_float32_io(toy_plugin, tmp_path):
    result = _export(tmp_path, precision=Precision.FP32)
    spec = load_spec(result.path)
    assert spec.description.input[0].type.multiArrayType.dataType == 65568  # FLOAT32
    assert result.cast_count == 0


def test_existing_output_needs_force(toy_plugin, tmp_path):
    first = _export(tmp_path)
    with pytest.raises(OutputError, match="already exists.*--force"):
        _export(tmp_path)
    again = _export(tmp_path, force=True)
    assert again.path == first.path and again.path.is_dir()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(TEMP_PREFIX)]


def test_failed_write_leaves_nothing(tmp_path):
    def write(staged):
        staged.mkdir()
        (staged / "half").write_text("x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write_dir(tmp_path / "m.mlpackage", write, force=False)
    assert os.listdir(tmp_path) == []


def test_sigint_during_write_leaves_nothing(tmp_path):
    def write(staged):
        staged.mkdir()
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        atomic_write_dir(tmp_path / "m.mlpackage", write, force=False)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("target", "precision", "message"),
    [
        ("macOS99", Precision.FP16, "unknown deployment target"),
        ("macOS12", Precision.FP16, "cannot take float16 inputs"),
        ("iOS14", Precision.FP32, "too old for ML programs"),
    ],
)
def test_bad_targets(target, precision, message):
    with pytest.raises(UsageError, match=message):
        parse_target(target, precision=precision)


def test_target_names_are_case_insensitive():
    assert parse_target("ios17")[0] == "iOS17"
    assert parse_target("macOS15", stateful=True)[0] == "macOS15"
    with pytest.raises(UsageError, match="--stateful"):
        parse_target("macOS14", stateful=True)


def test_psnr_definition():
    ref = np.array([1.0, -2.0, 0.5, 0.0])
    noisy = ref + np.array([0.01, -0.01, 0.01, -0.01])
    assert psnr(ref, noisy) == pytest.approx(20 * np.log10(2.0 / 0.01))
    assert psnr(ref, ref) == float("inf")
