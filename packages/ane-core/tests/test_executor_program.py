"""The executor on saved packages: loading with weights, fp16 rounding, inputs, backends,
and a whole exported model (the toy transformer) against its PyTorch module."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from ane_core._coremltools import coremltools
from ane_core.errors import PackageError
from ane_core.executor import (
    CoreMLUnavailableError,
    Program,
    ProgramInputError,
    load_program,
    run_package,
)
from ane_core.export import export_component
from ane_core.metrics import psnr
from ane_core.targets import Precision, parse_target
from ane_core.testing import ToyArchitecture

ct = coremltools()
from coremltools.converters.mil import Builder as mb  # noqa: E402
from coremltools.converters.mil.mil import types  # noqa: E402


def save_program(program, path, precision=ct.precision.FLOAT32):
    model = ct.convert(
        program,
        convert_to="mlprogram",
        compute_precision=precision,
        pass_pipeline=ct.PassPipeline.EMPTY,
        skip_model_load=True,
    )
    model.save(str(path))
    return path


def test_fp16_program_rounds_every_op_output(tmp_path):
    """(x + 2048) - 2048 is 0 in fp16 for x = 1 (2049 ties to 2048), 1 in fp32."""

    @mb.program(
        input_specs=[mb.TensorSpec(shape=(2,), dtype=types.fp16)], opset_version=ct.target.iOS16
    )
    def program(x):
        big = np.float16(2048)
        return mb.sub(x=mb.add(x=x, y=big), y=big, name="y")

    path = save_program(program, tmp_path / "round.mlpackage", ct.precision.FLOAT16)
    out = run_package(path, {"x": np.array([1.0, 2.0], dtype=np.float16)})["y"]
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, np.array([0.0, 2.0], dtype=np.float16))


def test_saved_weights_are_read_and_constants_folded(tmp_path):
    weight = np.random.default_rng(1).standard_normal((64, 32)).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=(3, 32))], opset_version=ct.target.iOS16)
    def program(x):
        doubled = mb.mul(x=weight, y=2.0)  # constant-only op: evaluated once at load
        return mb.linear(x=x, weight=doubled, name="y")

    path = save_program(program, tmp_path / "linear.mlpackage")
    executor = Program.load(path)
    assert [step.op_type for step in executor._steps] == ["linear"]
    x = np.random.default_rng(2).standard_normal((3, 32)).astype(np.float32)
    np.testing.assert_allclose(executor({"x": x})["y"], x @ (2 * weight).T, rtol=1e-5, atol=1e-5)


def test_inputs_are_checked(tmp_path):
    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 3))], opset_version=ct.target.iOS16)
    def program(x):
        return mb.relu(x=x, name="y")

    executor = Program.load(save_program(program, tmp_path / "relu.mlpackage"))
    with pytest.raises(ProgramInputError, match="do not match"):
        executor({"z": np.zeros((2, 3))})
    with pytest.raises(ProgramInputError, match="shape"):
        executor({"x": np.zeros((3, 2))})


def test_not_a_package_is_one_line_error(tmp_path):
    with pytest.raises(PackageError, match="is not an .mlpackage directory: it has no Manifest"):
        Program.load(tmp_path)


@pytest.mark.skipif(sys.platform == "darwin", reason="platform: Core ML runs on macOS")
def test_coreml_backend_off_macos_says_it_needs_macos(tmp_path):
    with pytest.raises(CoreMLUnavailableError, match="needs macOS"):
        load_program(tmp_path, backend="coreml")


def test_unknown_backend_and_compute_units_are_rejected(tmp_path):
    with pytest.raises(Exception, match="unknown backend"):
        load_program(tmp_path, backend="tpu")
    with pytest.raises(Exception, match="unknown compute units"):
        load_program(tmp_path, compute_units="gpu_only")


@pytest.mark.parametrize(("precision", "floor"), [(Precision.FP32, 90.0), (Precision.FP16, 35.0)])
def test_exported_toy_transformer_matches_pytorch(tmp_path, precision, floor):
    """A whole ANE export (conv, split-einsum attention, channel LayerNorm) end to end."""
    arch = ToyArchitecture()
    weights = arch.load_weights("small", None)
    model = arch.build("encoder", "ane", weights)
    with torch.no_grad():
        reference = model.module(*model.example_inputs).numpy()
    result = export_component(
        arch,
        size="small",
        component="encoder",
        variant="ane",
        weights=weights,
        precision=precision,
        target=parse_target("macOS13", precision=precision),
        output_dir=tmp_path,
    )
    inputs = {"x": model.example_inputs[0].numpy()}
    output = run_package(result.path, inputs)["y"]
    assert output.dtype == precision.numpy_dtype
    assert psnr(reference, output) >= floor


@pytest.mark.parametrize(
    ("compression", "target", "op"),
    [
        ("int8", "macOS13", "constexpr_affine_dequantize"),
        ("int8", "macOS15", "constexpr_blockwise_shift_scale"),
        ("palettize4", "macOS15", "constexpr_lut_to_dense"),
    ],
)
def test_compressed_exports_run_dequantised(tmp_path, compression, target, op):
    """Compressed weights are expanded by their constexpr ops, not read as raw codes
    (which would put the output tens of dB off)."""
    from ane_core.compress import parse_compression
    from ane_core.mil import op_counts

    arch = ToyArchitecture()
    weights = arch.load_weights("small", None)
    (case,) = arch.parity_inputs("encoder", "ane", weights)
    model = arch.build("encoder", "ane", weights)
    with torch.no_grad():
        reference = model.module(*case.inputs).numpy()
    result = export_component(
        arch,
        size="small",
        component="encoder",
        variant="ane",
        weights=weights,
        precision=Precision.FP16,
        target=parse_target(target),
        output_dir=tmp_path,
        compression=parse_compression(compression),
    )
    assert op_counts(result.path)[op] > 0
    output = run_package(result.path, {"x": case.inputs[0].numpy()})["y"]
    assert psnr(reference, output) >= 20.0


def test_float16_rounding_is_bit_identical_to_numpy():
    from ane_core.executor.dtypes import round_to_float16

    rng = np.random.default_rng(0)
    scales = (1e-9, 1e-7, 1e-5, 6e-5, 1e-2, 1.0, 1e3, 6e4, 1e5)
    values = np.concatenate([rng.standard_normal(20000) * s for s in scales])
    special = [np.nan, np.inf, -np.inf, 65519.9, 65520.0, 0.0, -0.0, 2**-14, 2**-24, 3 * 2**-25]
    random_bits = rng.integers(0, 2**32, size=200000, dtype=np.uint64).astype(np.uint32)
    for array in (
        np.concatenate([values, special]).astype(np.float32),
        random_bits.view(np.float32),
    ):
        with np.errstate(over="ignore", invalid="ignore"):
            expected = array.astype(np.float16).astype(np.float32)
        got = round_to_float16(array)
        same = (expected.view(np.uint32) == got.view(np.uint32)) | (
            np.isnan(expected) & np.isnan(got)
        )
        assert same.all()
