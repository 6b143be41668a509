"""The executor on saved packages: loading with weights, fp16 rounding, inputs, backends,
and a whole exported model (the toy transformer) against its PyTorch module."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from ane_core._coremltools import coremltools
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
    with pytest.raises(Exception, match="not a saved .mlpackage"):
        Program.load(tmp_path)


@pytest.mark.skipif(sys.platform == "darwin", reason="Core ML runs on macOS")
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
