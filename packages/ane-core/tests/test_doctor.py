"""``ane_core.doctor`` on a real toy export, with Core ML faked at its boundary only: the
platform check, the compiler, the model load and ``MLComputePlan``. Everything between
(package check, prediction, random inputs, timing, comparison, text and JSON) is real."""

from __future__ import annotations

import json
import platform

import numpy as np
import pytest
from toy_packages import export_state_program, export_toy

from ane_core import doctor
from ane_core.errors import UsageError
from ane_core.executor.errors import CoreMLUnavailableError
from ane_core.inspect import compute_plan
from ane_core.inspect.compute_plan import PlannedOp
from ane_core.inspect.placement import PlacedOp, Placement, load_table
from ane_core.inspect.program import read_program
from ane_core.mil import load_spec


class FakeModel:
    """Stands in for ``coremltools.models.CompiledMLModel``: records what it is fed."""

    def __init__(self, compiled, compute_units):
        self.compiled, self.compute_units, self.feeds = compiled, compute_units, []

    def make_state(self):
        self.state = object()
        return self.state

    def predict(self, feed, state=None):
        self.feeds.append((feed, state))
        return {}


@pytest.fixture
def fake_coreml(monkeypatch, tmp_path):
    """Core ML on a Mac, as seen through the four functions doctor calls: the plan puts
    every op on the ANE but the first softmax (if any), which it puts on the CPU."""
    calls = {}

    def compile_(package, workdir):
        calls["compiled"] = package
        compiled = workdir / "toy.mlmodelc"
        compiled.mkdir()
        return compiled

    def load(compiled, compute_units):
        calls["model"] = FakeModel(compiled, compute_units)
        return calls["model"]

    def plan(compiled, compute_units):
        calls["plan_units"] = compute_units
        ops = [op for op in read_program(load_spec(calls["compiled"])).operations]
        ops = [op for op in ops if not op.is_const]
        first_softmax = next((op for op in ops if op.type == "softmax"), None)
        return [
            PlannedOp(
                op.type,
                op.outputs[0].name if op.outputs else "",  # as plan_compiled names them
                "cpu" if op is first_softmax else "ane",
                0.5,
            )
            for op in ops
        ]

    monkeypatch.setattr(compute_plan, "unavailable_reason", lambda: None)
    monkeypatch.setattr(compute_plan, "plan_compiled", plan)
    monkeypatch.setattr(doctor, "_compile", compile_)
    monkeypatch.setattr(doctor, "_load", load)
    return calls


def test_doctor_compares_core_mls_plan_with_the_prediction(fake_coreml, tmp_path):
    package = export_toy(tmp_path)
    report = doctor.diagnose(package, runs=3)
    model = fake_coreml["model"]
    assert model.compute_units == fake_coreml["plan_units"] == "CPU_AND_NE"
    assert len(model.feeds) == 4 and len(report.predict_seconds) == 3  # a first call, then 3
    (feed,) = {id(f): f for f, _ in model.feeds}.values()  # the same random inputs every call
    assert {state for _, state in model.feeds} == {None}  # no state made for a stateless model
    assert feed["x"].shape == (1, 64, 1, 32) and feed["x"].dtype == np.float16
    ops = len(report.placement.ops)
    assert len(report.rows) == ops and report.placement.counts()["ane"] == ops
    assert report.verdicts() == {"agree": ops - 1, "predicted ANE, chose off": 1}
    assert report.chosen_switches == 2 and report.placement.switches == 0
    assert report.plan["ane_op_share"] == pytest.approx((ops - 1) / ops)

    text = doctor.render_doctor(report)
    assert "compute units CPU_AND_NE" in text and "ANE coverage" in text
    assert "predicted ANE, chose off 1" in text and "2 device switches per call" in text
    assert "softmax ->" in text.split("where they differ")[1].splitlines()[1]
    every_op = text.split("Every op (program order)")[1].splitlines()[1:]
    assert len(every_op) == ops and every_op[0].startswith("  layer_norm -> ")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["chosen_switches_per_call"] == 2 and len(data["ops"]) == ops
    assert data["predicted"]["switches_per_call"] == 0


def test_a_stateful_package_is_called_with_one_state(fake_coreml, tmp_path):
    report = doctor.diagnose(export_state_program(tmp_path, 270), runs=2)
    model = fake_coreml["model"]
    assert [state for _, state in model.feeds] == [model.state] * 3
    assert set(model.feeds[0][0]) == {"x"}  # the state is not an input
    # the 270-wide state: the plan (all ANE here) and the prediction disagree on its two ops
    assert report.verdicts() == {"agree": 2, "predicted off, chose ANE": 2}
    assert report.placement.switches == 3 and report.chosen_switches == 0


def test_core_ml_refusing_the_package_is_one_line(fake_coreml, monkeypatch, tmp_path):
    def refuse(compiled, compute_units):
        raise RuntimeError("E5RT encountered an STL exception.\nANECCompile() FAILED")

    monkeypatch.setattr(doctor, "_load", refuse)
    with pytest.raises(doctor.CoreMLFailedError) as caught:
        doctor.diagnose(export_toy(tmp_path))
    message = str(caught.value)
    assert message.startswith("Core ML could not load toy-small-encoder-ane-fp16.mlpackage: E5RT")
    assert "\n" not in message and "ANECCompile() FAILED" in message


def test_doctor_refuses_bad_runs_before_touching_core_ml(fake_coreml, tmp_path):
    with pytest.raises(UsageError, match="--runs must be at least 1"):
        doctor.diagnose(tmp_path / "x.mlpackage", runs=0)
    assert "compiled" not in fake_coreml


@pytest.mark.skipif(
    platform.system() == "Darwin", reason="platform: Core ML's compute plan exists on macOS"
)
def test_doctor_off_macos_says_it_needs_macos_in_one_line(tmp_path):
    with pytest.raises(CoreMLUnavailableError) as caught:
        doctor.diagnose(tmp_path / "does-not-exist.mlpackage")
    message = str(caught.value)
    assert "ane doctor needs macOS 14.4+" in message and "\n" not in message
    assert caught.value.exit_code != 0


def test_random_inputs_follow_the_declared_shapes_and_dtypes():
    feed = doctor.random_inputs(
        [
            {"name": "mel", "dtype": "FLOAT32", "shape": [1, 80, 1, 3000]},
            {"name": "token", "dtype": "INT32", "shape": [1, 1]},
        ]
    )
    assert feed["mel"].shape == (1, 80, 1, 3000) and feed["mel"].dtype == np.float32
    assert feed["mel"].std() > 0.5
    assert feed["token"].dtype == np.int32 and not feed["token"].any()
    with pytest.raises(UsageError, match="multi-array inputs only"):
        doctor.random_inputs([{"name": "img", "kind": "imageType"}])


def test_ops_are_matched_by_type_output_and_order():
    ops = [
        PlacedOp("gather", "g", "rows", "main", "cpu-gpu", "gather"),
        PlacedOp("write_state", "w1", "", "main", "ane", "ane-native-ops"),
        PlacedOp("write_state", "w2", "", "main", "ane", "ane-native-ops"),
        PlacedOp("cast", "c", "y", "main", "unknown", "float-cast"),
    ]
    planned = [
        PlannedOp("constexpr_lut_to_dense", "w", "ane", 0.0),  # decompression: not predicted
        PlannedOp("write_state", "", "cpu", 0.1),
        PlannedOp("cast", "y", "cpu", 0.1),
    ]
    rows = doctor.compare(Placement(ops, load_table()), planned)
    assert [row.verdict for row in rows] == [
        "not in plan",
        "predicted ANE, chose off",
        "not in plan",
        "unknown",
    ]
