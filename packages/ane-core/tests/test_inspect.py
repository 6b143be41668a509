"""``ane_core.inspect``: each rule found once in a program built to break it, none in clean
programs, exact FLOPs and weight bytes, and the real Whisper tiny.en encoder."""

from __future__ import annotations

import json
import platform

import numpy as np
import pytest
import torch

from ane_core import plugins
from ane_core._coremltools import coremltools
from ane_core.errors import UsageError
from ane_core.export import export_component
from ane_core.inspect import RULES_BY_ID, inspect_package, report_path, write_report
from ane_core.inspect.compute_plan import PlannedOp, summarize, unavailable_reason
from ane_core.inspect.cost import estimate_cost
from ane_core.inspect.program import read_program
from ane_core.inspect.rules import padding_waste
from ane_core.inspect.traffic import call_traffic
from ane_core.mil import load_spec
from ane_core.save import save_mlmodel
from ane_core.targets import Precision, parse_target


def _mil():
    ct = coremltools()
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    return ct, mb, types


def _save_program(prog, path, precision="fp16"):
    """Save a MIL program untouched: no optimisation pass may remove what a test put in."""
    ct, _, _ = _mil()
    mlmodel = ct.convert(
        prog,
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.macOS13,
        compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
        pass_pipeline=ct.PassPipeline.EMPTY,
        skip_model_load=True,
    )
    return save_mlmodel(mlmodel, path, force=False)


def _program(build, *specs):
    ct, mb, _ = _mil()
    return mb.program(input_specs=list(specs), opset_version=ct.target.macOS13)(build)


def _fp16(*shape):
    _, mb, types = _mil()
    return mb.TensorSpec(shape=shape, dtype=types.fp16)


def _int32(*shape):
    _, mb, types = _mil()
    return mb.TensorSpec(shape=shape, dtype=types.int32)


# Each builder breaks exactly one rule exactly once: (rule, op type, program).
def _cast():
    _, mb, _ = _mil()
    return (
        "cast",
        "cast",
        _program(lambda x: mb.cast(x=mb.relu(x=x), dtype="fp32"), _fp16(1, 8, 1, 32)),
    )


def _float32_op():
    _, mb, types = _mil()
    spec32 = mb.TensorSpec(shape=(1, 8, 1, 32), dtype=types.fp32)
    prog = _program(
        lambda x, z: (mb.relu(x=x), mb.add(x=z, y=np.float32(1))), _fp16(1, 8, 1, 32), spec32
    )
    return "float32-compute", "add", prog


def _large_dim():
    _, mb, _ = _mil()

    def build(x):
        wide = mb.tile(x=x, reps=[1, 1, 1, 160])  # (1, 16, 1, 20480)
        return mb.reduce_sum(x=wide, axes=[3], keep_dims=True)

    return "dim-over-16384", "tile", _program(build, _fp16(1, 16, 1, 128))


def _rank5():
    _, mb, _ = _mil()

    def build(x):
        five = mb.reshape(x=x, shape=[1, 2, 2, 8, 8])
        return mb.reduce_sum(x=five, axes=[1], keep_dims=False)

    return "rank-over-4", "reshape", _program(build, _fp16(1, 4, 8, 8))


def _padding():
    _, mb, _ = _mil()
    prog = _program(lambda x: mb.transpose(x=x, perm=[0, 1, 3, 2]), _fp16(1, 512, 1, 512))
    return "last-axis-padding", "transpose", prog


def _integer():
    _, mb, _ = _mil()
    return (
        "integer-compute",
        "add",
        _program(lambda ids: mb.add(x=ids, y=np.int32(1)), _int32(1, 4)),
    )


def _gather():
    _, mb, _ = _mil()
    table = np.zeros((100, 64), np.float16)
    prog = _program(lambda ids: mb.gather(x=table, indices=ids, axis=0), _int32(1, 4))
    return "gather", "gather", prog


def _batched_matmul():
    _, mb, _ = _mil()
    prog = _program(
        lambda q, k: mb.matmul(x=q, y=k, transpose_y=True), _fp16(1, 4, 32, 16), _fp16(1, 4, 32, 16)
    )
    return "not-split-heads", "matmul", prog


def _batched_einsum():
    _, mb, _ = _mil()
    # The ANE einsum form, but with 4 heads on the h axis instead of one einsum per head.
    prog = _program(
        lambda a, b: mb.einsum(values=(a, b), equation="bchk,bkhq->bchq"),
        _fp16(1, 16, 4, 32),
        _fp16(1, 32, 4, 32),
    )
    return "not-split-heads", "einsum", prog


RULE_BREAKERS = [
    _cast,
    _float32_op,
    _large_dim,
    _rank5,
    _padding,
    _integer,
    _gather,
    _batched_matmul,
    _batched_einsum,
]


@pytest.mark.parametrize("breaker", RULE_BREAKERS, ids=lambda b: b.__name__.strip("_"))
def test_each_rule_is_found_once_and_alone(breaker, tmp_path):
    rule, op_type, prog = breaker()
    report = inspect_package(_save_program(prog, tmp_path / "m.mlpackage"))
    assert dict(report.findings_by_rule()) == {rule: 1}, [f.detail for f in report.findings]
    (finding,) = report.findings
    assert finding.op_type == op_type and finding.tensor and finding.detail
    entry = finding.to_dict()
    assert entry["reason"] == RULES_BY_ID[rule].reason and entry["op"] == finding.op_name


def test_every_rule_has_a_program_that_breaks_it():
    # flexible-shape has its own tests below; duplicate-weights reads weight files, in
    # test_duplicate_weights.py
    covered = {breaker()[0] for breaker in RULE_BREAKERS} | {"flexible-shape", "duplicate-weights"}
    assert covered == set(RULES_BY_ID)


def test_padding_waste_is_measured_in_bytes_and_percent(tmp_path):
    report = inspect_package(_save_program(_padding()[2], tmp_path / "m.mlpackage"))
    (finding,) = report.findings
    rows = 512 * 512  # (1, 512, 512, 1) float16: 2 bytes per 64-byte row
    assert finding.data["waste_bytes"] == rows * 62 and finding.data["padded_bytes"] == rows * 64
    assert finding.data["waste_percent"] == pytest.approx(100 * 62 / 64, abs=0.01)


def test_shape_arithmetic_and_constant_gathers_are_not_findings(tmp_path):
    """Integer ops on a tensor's shape do not depend on input values: no finding."""
    _, mb, _ = _mil()

    def build(x):
        shape = mb.mul(x=mb.shape(x=x), y=np.array([1, 1, 1, 1], dtype=np.int32))
        kept = mb.gather(x=shape, indices=np.array([0, 1, 3], dtype=np.int32), axis=0)
        return mb.reshape(x=x, shape=kept)

    report = inspect_package(
        _save_program(_program(build, _fp16(1, 8, 1, 32)), tmp_path / "m.mlpackage")
    )
    assert report.findings == []
    assert {"shape", "mul", "gather"} <= set(report.op_census)


def test_whole_float32_program_is_one_finding(tmp_path):
    _, mb, types = _mil()
    spec = mb.TensorSpec(shape=(1, 8, 1, 32), dtype=types.fp32)
    prog = _program(lambda x: mb.relu(x=mb.relu(x=x)), spec)
    report = inspect_package(_save_program(prog, tmp_path / "m.mlpackage", precision="fp32"))
    assert report.precision == "fp32"
    (finding,) = report.findings
    assert finding.rule == "float32-compute" and finding.op_type is None


def test_data_dependent_shape_is_flexible(tmp_path):
    _, mb, _ = _mil()
    prog = _program(lambda x: mb.non_zero(x=x), _fp16(1, 8, 1, 32))
    report = inspect_package(_save_program(prog, tmp_path / "m.mlpackage"))
    flexible = [f for f in report.findings if f.rule == "flexible-shape"]
    assert len(flexible) == 1 and flexible[0].op_type == "non_zero"


def _flexible_export(path, shape):
    ct = coremltools()

    class Relu(torch.nn.Module):
        def forward(self, x):
            return torch.relu(x) * 2

    traced = torch.jit.trace(Relu().eval(), torch.randn(1, 8, 1, 16))
    mlmodel = ct.convert(
        traced,
        inputs=[ct.TensorType(name="x", shape=shape, dtype=np.float16)],
        outputs=[ct.TensorType(name="y", dtype=np.float16)],
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.macOS13,
        skip_model_load=True,
    )
    return save_mlmodel(mlmodel, path, force=False)


def test_range_shapes_are_flagged_once_enumerated_shapes_are_not(tmp_path):
    ct = coremltools()
    ranged = _flexible_export(
        tmp_path / "range.mlpackage", ct.Shape((1, 8, 1, ct.RangeDim(1, 64, default=16)))
    )
    report = inspect_package(ranged)
    assert dict(report.findings_by_rule()) == {"flexible-shape": 1}
    assert report.findings[0].tensor == "x" and "range" in report.findings[0].detail
    assert report.inputs[0]["flexibility"] == "range"
    assert report.cost.flexible
    # every op computes on the runtime shape: predicted off the ANE (rule flexible-shape)
    assert report.placement.counts() == {"ane": 0, "cpu-gpu": 2, "unknown": 0}
    enumerated = _flexible_export(
        tmp_path / "enum.mlpackage",
        ct.EnumeratedShapes([(1, 8, 1, 16), (1, 8, 1, 32)], default=(1, 8, 1, 16)),
    )
    report = inspect_package(enumerated)
    assert report.findings == [] and report.inputs[0]["flexibility"] == "enumerated"
    assert report.placement.counts() == {"ane": 2, "cpu-gpu": 0, "unknown": 0}


def _toy_export(tmp_path, variant, precision=Precision.FP16):
    arch = plugins.get_architecture("toy")
    return export_component(
        arch,
        size="small",
        component="encoder",
        variant=variant,
        weights=arch.load_weights("small", None),
        precision=precision,
        target=parse_target("macOS13", precision=precision),
        output_dir=tmp_path,
    )


def test_toy_ane_fp16_export_is_clean(toy_plugin, tmp_path):
    result = _toy_export(tmp_path, "ane")
    report = inspect_package(result.path)
    assert report.findings == [], [f.detail for f in report.findings]
    assert report.summary_line().startswith("ANE check: no findings")
    assert report.precision == "fp16" and "macOS13" in report.deployment_targets
    assert report.inputs == [
        {"name": "x", "kind": "multiArrayType", "dtype": "FLOAT16", "shape": [1, 64, 1, 32],
         "description": "toy input"}
    ]  # fmt: skip
    assert report.metadata["user_defined"]["ane.architecture"] == "toy"
    assert report.op_census["einsum"] == 16 and report.op_census["cast"] == 0
    biggest = report.largest_tensors[0]
    assert biggest["bytes"] == max(row["bytes"] for row in report.largest_tensors) > 0


def test_per_call_traffic_counts_io_bytes_and_states_apart(toy_plugin, tmp_path):
    report = inspect_package(_toy_export(tmp_path, "ane").path)
    traffic = report.traffic
    assert traffic.call_unit == "call"  # the toy names no unit
    assert traffic.input_bytes == traffic.output_bytes == 1 * 64 * 1 * 32 * 2  # FP16 x and y
    assert traffic.state_bytes == 0 and traffic.macs == report.cost.matmul_flops // 2
    assert traffic.weight_bytes == report.cost.weight_bytes
    cost = report.to_dict()["cost"]
    assert cost["input_bytes_per_call"] == 4096 and cost["call_unit"] == "call"
    assert cost["per_call"] == traffic.summary() and "per call:" in report.summary_line()
    described = [{"name": "s", "dtype": "FLOAT16", "shape": [2, 3]}]
    kept = call_traffic(
        [], [], described, matmul_flops=10, weight_bytes=0, metadata={"user_defined": {}}
    )
    assert kept.state_bytes == 12 and kept.macs == 5 and "state kept inside" in kept.summary()


def test_toy_stock_export_has_only_batched_attention(toy_plugin, tmp_path):
    report = inspect_package(_toy_export(tmp_path, "stock").path)
    # Two layers, each with Q.K^T and A.V batched over 4 heads.
    assert dict(report.findings_by_rule()) == {"not-split-heads": 4}
    assert all("batched over 4 heads" in f.detail for f in report.findings)


def test_matrix_flops_and_weight_bytes_are_exact(tmp_path):
    _, mb, _ = _mil()
    weight = np.ones((4, 8, 1, 3), np.float16)
    table = np.ones((32, 16), np.float16)  # linear weight: (out, in)

    def build(x, a, b):
        conv = mb.conv(x=x, weight=weight, pad_type="same")  # (1, 4, 1, 16)
        lin = mb.linear(x=mb.reshape(x=conv, shape=[4, 16]), weight=table)  # -> (4, 32)
        mm = mb.matmul(x=a, y=b)  # (3, 5) @ (5, 7)
        ein = mb.einsum(
            values=(x, mb.transpose(x=x, perm=[0, 3, 2, 1])), equation="bchk,bkhq->bchq"
        )
        return conv, lin, mm, ein

    prog = _program(build, _fp16(1, 8, 1, 16), _fp16(3, 5), _fp16(5, 7))
    cost = estimate_cost(read_program(load_spec(_save_program(prog, tmp_path / "m.mlpackage"))))
    conv_macs = 1 * 4 * 1 * 16 * (8 * 3)
    linear_macs = 4 * 32 * 16
    matmul_macs = 3 * 7 * 5
    einsum_macs = (1 * 8 * 1 * 8) * 16  # (1, 8, 1, 8) out, contracting k = 16
    assert cost.matmul_flops == 2 * (conv_macs + linear_macs + matmul_macs + einsum_macs)
    assert cost.weight_bytes >= weight.nbytes + table.nbytes
    assert cost.flops_by_op_type["conv"] == 2 * conv_macs


def test_padding_waste_of_aligned_and_narrow_rows():
    from ane_core.inspect.program import TensorInfo

    assert padding_waste(TensorInfo("a", "FLOAT16", (1, 384, 1, 32))) == (0, 384 * 64)
    assert padding_waste(TensorInfo("b", "FLOAT16", (1, 384, 1, 1500))) == (384 * 8, 384 * 3008)
    assert padding_waste(TensorInfo("c", "FLOAT32", (2, 1))) == (2 * 60, 2 * 64)
    assert padding_waste(TensorInfo("d", "FLOAT16", (1, None))) is None


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("missing.mlpackage", None, "does not exist"),
        ("model.mlmodel", "file", "is not an .mlpackage"),
        ("empty.mlpackage", "dir", "is not an .mlpackage"),
    ],
)
def test_bad_paths_are_one_line_usage_errors(tmp_path, name, make, message):
    path = tmp_path / name
    if make == "file":
        path.write_text("x")
    elif make == "dir":
        path.mkdir()
    with pytest.raises(UsageError, match=message) as caught:
        inspect_package(path)
    assert "\n" not in str(caught.value)


def test_report_json_is_written_atomically_beside_the_package(toy_plugin, tmp_path):
    result = _toy_export(tmp_path, "ane")
    report = inspect_package(result.path)
    target = write_report(report)
    assert (
        target == report_path(result.path) == tmp_path / "toy-small-encoder-ane-fp16.inspect.json"
    )
    data = json.loads(target.read_text())
    assert data["findings"] == [] and data["summary"] == report.summary_line()
    assert set(data["findings_by_rule"]) == set(RULES_BY_ID)
    assert data["cost"]["flops"] == report.cost.flops > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([result.path.name, target.name])


@pytest.mark.skipif(
    platform.system() == "Darwin", reason="platform: the compute plan exists on macOS"
)
def test_compute_plan_off_macos_says_it_needs_a_mac(tmp_path):
    assert "needs macOS 14.4+" in unavailable_reason()
    report = inspect_package(_save_program(_cast()[2], tmp_path / "m.mlpackage"))
    assert report.compute_plan["available"] is False
    assert "needs macOS 14.4+" in report.compute_plan["reason"]


def test_compute_plan_summary_shares():
    plan = summarize(
        [
            PlannedOp("conv", "a", "ane", 0.6),
            PlannedOp("conv", "b", "ane", 0.2),
            PlannedOp("gather", "c", "cpu", 0.2),
            PlannedOp("cast", "d", "cpu", None),
        ]
    )
    assert plan["ops_by_device"] == {"ane": 2, "cpu": 2}
    assert plan["ane_op_share"] == 0.5 and plan["ane_cost_share"] == pytest.approx(0.8)
    assert [op["output"] for op in plan["off_ane"]] == ["c", "d"]
