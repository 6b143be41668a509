"""The conversion pipeline end to end on the toy plugin: ane-core needs no other package."""

from __future__ import annotations

import os
import signal
from pathlib import Path

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

    # Python's own Ctrl-C handler, even when the runner was started in the background with
    # SIGINT ignored (a shell does that to `cmd &`), which would swallow the signal
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            atomic_write_dir(tmp_path / "m.mlpackage", write, force=False)
    finally:
        signal.signal(signal.SIGINT, previous)
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


@pytest.mark.parametrize("fault", [KeyboardInterrupt, RuntimeError])
def test_fault_during_conversion_leaves_no_package_and_no_temp_dir(
    toy_plugin, tmp_path, monkeypatch, fault
):
    import ane_core.export as export_module

    real = export_module.to_coreml
    seen: dict[str, list[str]] = {}

    def convert_then_fail(*args, **kwargs):
        real(*args, **kwargs)  # coremltools has written its temporary package by now
        seen["staged"] = [p for p in os.listdir(tmp_path) if p.startswith(TEMP_PREFIX)]
        raise fault("stop")

    monkeypatch.setattr(export_module, "to_coreml", convert_then_fail)
    with pytest.raises(fault):
        _export(tmp_path)
    assert seen["staged"], "conversion should have staged its files beside the target"
    assert os.listdir(tmp_path) == []


def test_disk_full_while_saving_is_a_clean_one_line_error(toy_plugin, tmp_path, monkeypatch):
    import errno

    from ane_core._coremltools import coremltools

    def full_disk(self, path):
        os.makedirs(path)
        (Path(path) / "partial").write_bytes(b"x")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(coremltools().models.MLModel, "save", full_disk)
    with pytest.raises(OutputError, match="No space left on device.*Free disk space") as info:
        _export(tmp_path)
    assert "\n" not in str(info.value)
    assert os.listdir(tmp_path) == []


def test_second_export_to_the_same_place_does_not_corrupt_the_first(toy_plugin, tmp_path):
    """Two exports race for one target: the one that publishes second is refused, and the
    published package stays complete (its files are exactly those of a lone export)."""
    from ane_core.save import staging

    target = tmp_path / "toy-small-encoder-ane-fp16.mlpackage"
    with staging(target, force=False) as slow:
        first = _export(tmp_path)  # finishes while the slow export is still staging
        files = sorted(str(p.relative_to(target)) for p in target.rglob("*"))
        slow.path.mkdir()
        with pytest.raises(OutputError, match="appeared while exporting"):
            slow.publish()
    assert first.path == target
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*")) == files
    assert os.listdir(tmp_path) == [target.name]


def test_same_weights_export_to_identical_program_and_weights(toy_plugin, tmp_path):
    """Determinism: weights and program are byte-identical across exports. The package
    Manifest.json is not: Core ML gives each item a fresh UUID identifier."""
    a = _export(tmp_path / "a").path
    b = _export(tmp_path / "b").path
    for part in ("Data/com.apple.CoreML/model.mlmodel", "Data/com.apple.CoreML/weights/weight.bin"):
        assert (a / part).read_bytes() == (b / part).read_bytes(), part


def test_layer_norm_affine_is_folded_into_one_op(toy_plugin, tmp_path):
    """nn.LayerNorm's x_hat * w + b becomes one layer_norm, not layer_norm + batch_norm."""
    counts = _export(tmp_path, precision=Precision.FP32).op_counts
    assert counts["layer_norm"] == 2 and counts["batch_norm"] == 0


@pytest.mark.parametrize("scale", [3.0, 1e5])  # 1e5 exceeds float16: that op stays float32
def test_fast_fp16_cast_pass_converts_exactly_like_coremltools(tmp_path, monkeypatch, scale):
    from ane_core import convert, passes
    from ane_core.architecture import ExportableModel, TensorSpec

    class Scaled(torch.nn.Module):
        def forward(self, x):
            return torch.relu(x * scale) + 1.0

    x = torch.randn(1, 8, 1, 16)
    model = ExportableModel(
        module=Scaled(),
        inputs=[TensorSpec("x", tuple(x.shape), "x")],
        outputs=[TensorSpec("y", tuple(x.shape), "y")],
        example_inputs=(x,),
    )
    target = parse_target("macOS13")[1]

    def program_bytes(name):
        mlmodel = convert.to_coreml(convert.trace(model), model, Precision.FP16, target)
        mlmodel.save(str(tmp_path / name))
        return (tmp_path / name / "Data/com.apple.CoreML/model.mlmodel").read_bytes()

    ours = program_bytes("ours.mlpackage")
    monkeypatch.setattr(
        convert, "conversion_pipeline", lambda fp16: passes.conversion_pipeline(False)
    )
    theirs = program_bytes("theirs.mlpackage")
    assert ours == theirs
    assert (op_counts(tmp_path / "ours.mlpackage")["cast"] > 0) == (scale > 65504)
