"""The torch lowering of the reference executor against its numpy oracle: the rounding rule,
whole exported programs op by op and end to end, states, engine choice, and that the check
itself bites. Each op family's cases run through both engines in ``test_executor_ops.py``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ane_core._coremltools import coremltools
from ane_core.compress import parse_compression
from ane_core.errors import UsageError
from ane_core.executor import ENGINES, LoweredProgram, Program, load_program
from ane_core.executor.lowering import ACCUMULATING, lowered_ops
from ane_core.executor.lowering import registry as lowering_registry
from ane_core.executor.lowering.check import compare_ops
from ane_core.executor.lowering.values import settle
from ane_core.export import export_component
from ane_core.metrics import psnr
from ane_core.targets import Precision, parse_target
from ane_core.testing import ToyArchitecture

ct = coremltools()
from coremltools.converters.mil import Builder as mb  # noqa: E402


def test_torch_rounding_to_float16_is_bit_identical_to_the_oracle():
    """Every float16 value, every midpoint between neighbours (ties to even), just either side
    of each midpoint, subnormals, overflow, infinities and NaN."""
    from ane_core.executor.dtypes import round_to_float16

    halves = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    finite = np.sort(halves[np.isfinite(halves)].astype(np.float32))
    midpoints = (finite[:-1].astype(np.float64) + finite[1:]) / 2
    around = np.concatenate(
        [
            midpoints,
            np.nextafter(midpoints.astype(np.float32), np.float32(np.inf)),
            np.nextafter(midpoints.astype(np.float32), np.float32(-np.inf)),
        ]
    ).astype(np.float32)
    special = np.array([np.nan, np.inf, -np.inf, 65519.9, 65520.0, 1e9, -1e9], np.float32)
    values = np.concatenate([finite, around, special])
    expected = round_to_float16(values)
    got = settle(torch.from_numpy(values.copy()), np.dtype(np.float16)).numpy()
    same = (expected.view(np.uint32) == got.view(np.uint32)) | (np.isnan(expected) & np.isnan(got))
    assert same.all(), values[~same][:5]
    in_place = settle(torch.from_numpy(values.copy()), np.dtype(np.float16), in_place=True)
    np.testing.assert_array_equal(in_place.numpy().view(np.uint32), got.view(np.uint32))


@pytest.fixture(scope="module")
def toy():
    arch = ToyArchitecture()
    weights = arch.load_weights("small", None)
    (case,) = arch.parity_inputs("encoder", "ane", weights)
    return arch, weights, {"x": case.inputs[0].numpy()}


def _export(toy, directory, precision, compression="none", target="macOS13"):
    arch, weights, _ = toy
    return export_component(
        arch,
        size="small",
        component="encoder",
        variant="ane",
        weights=weights,
        precision=precision,
        target=parse_target(target, precision=precision),
        output_dir=directory,
        compression=parse_compression(compression),
    ).path


@pytest.mark.parametrize(
    ("precision", "compression", "floor"),
    [
        (Precision.FP16, "none", 60.0),
        (Precision.FP32, "none", 120.0),
        (Precision.FP16, "palettize4", 60.0),
    ],
)
def test_exported_program_agrees_op_by_op_and_end_to_end(
    toy, tmp_path, precision, compression, floor
):
    """Op by op within the bound; end to end, one-step differences carried through the
    layers, so a PSNR floor (FP16 packages sit at 35-80 dB from PyTorch; the two engines
    are much closer to each other than that)."""
    path = _export(toy, tmp_path, precision, compression)
    lowered = LoweredProgram.load(path)
    assert lowered.numpy_steps == [] and lowered.lowered_steps > 0
    differences = compare_ops(lowered, toy[2])
    assert [d for d in differences if not d.within_bound] == []
    assert all(d.ulp == 0 for d in differences if not d.accumulating)
    oracle, fast = Program.load(path)(toy[2]), lowered(toy[2])
    for name, value in oracle.items():
        assert fast[name].dtype == value.dtype and fast[name].shape == value.shape
        print(name, psnr(value, fast[name]))
        assert psnr(value, fast[name]) >= floor


def test_check_bites_on_a_wrong_lowering(toy, tmp_path, monkeypatch):
    """A lowering off by one float16 step in an op that must be exact is caught, op named."""
    path = _export(toy, tmp_path, Precision.FP16)
    add = lowering_registry._LOWERED["add"]
    monkeypatch.setitem(lowering_registry._LOWERED, "add", lambda x, y: add(x, y) * (1 + 2.0**-10))
    differences = compare_ops(LoweredProgram.load(path), toy[2])
    wrong = [d for d in differences if not d.within_bound]
    assert wrong and {d.op_type for d in wrong} == {"add"}


def test_accumulating_bound_is_finite_and_exact_ops_are_not_accumulating():
    assert {"conv", "matmul", "einsum", "softmax", "layer_norm", "reduce_sum"} <= ACCUMULATING
    assert not {"add", "mul", "reshape", "select", "gather", "concat"} & ACCUMULATING
    assert set(lowered_ops()) >= ACCUMULATING


def test_ops_without_a_lowering_run_their_numpy_op():
    """``band_part`` has no torch twin: the lowered program runs the numpy op on views."""

    @mb.program(input_specs=[mb.TensorSpec(shape=(4, 4))], opset_version=ct.target.iOS16)
    def program(x):
        return mb.band_part(x=mb.relu(x=x), lower=1, upper=0, name="y")

    lowered = LoweredProgram(program)
    assert lowered.numpy_steps == ["band_part"]
    x = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    np.testing.assert_array_equal(lowered({"x": x})["y"], Program(program)({"x": x})["y"])


def test_engine_is_chosen_by_argument_then_environment(toy, tmp_path, monkeypatch):
    path = _export(toy, tmp_path, Precision.FP16)
    monkeypatch.delenv("ANE_MIL_ENGINE", raising=False)
    assert type(load_program(path)) is LoweredProgram
    assert type(load_program(path, engine="numpy")) is Program
    monkeypatch.setenv("ANE_MIL_ENGINE", "numpy")
    assert type(load_program(path)) is Program
    assert type(load_program(path, engine="torch")) is LoweredProgram
    monkeypatch.setenv("ANE_MIL_ENGINE", "jax")
    with pytest.raises(UsageError, match="ANE_MIL_ENGINE=jax"):
        load_program(path)
    with pytest.raises(UsageError, match="'jit'"):
        load_program(path, engine="jit")
    assert set(ENGINES) == {"torch", "numpy"}
