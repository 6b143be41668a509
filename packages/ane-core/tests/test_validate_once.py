"""Validating once per pipeline gives the same program and still refuses a broken one."""

from __future__ import annotations

import pytest
import torch

from ane_core import convert, passes
from ane_core.architecture import ExportableModel, TensorSpec
from ane_core.targets import Precision, parse_target
from ane_core.validate_once import ENV_EVERY_PASS


class _Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(8, 8, 1)
        self.norm = torch.nn.LayerNorm(8)

    def forward(self, x):
        y = torch.relu(self.conv(x)) + x
        return self.norm(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).softmax(dim=1)


def _model() -> ExportableModel:
    torch.manual_seed(0)
    x = torch.randn(1, 8, 1, 16)
    return ExportableModel(
        module=_Block(),
        inputs=[TensorSpec("x", tuple(x.shape), "x")],
        outputs=[TensorSpec("y", tuple(x.shape), "y")],
        example_inputs=(x,),
    )


def _program_bytes(tmp_path, name: str) -> bytes:
    model = _model()
    target = parse_target("macOS13")[1]
    mlmodel = convert.to_coreml(convert.trace(model), model, Precision.FP16, target)
    mlmodel.save(str(tmp_path / name))
    return (tmp_path / name / "Data/com.apple.CoreML/model.mlmodel").read_bytes()


def test_same_program_as_validating_after_every_pass(tmp_path, monkeypatch):
    once = _program_bytes(tmp_path, "once.mlpackage")
    monkeypatch.setenv(ENV_EVERY_PASS, "1")
    every = _program_bytes(tmp_path, "every.mlpackage")
    assert once == every


def test_a_pass_that_breaks_the_program_is_still_refused(tmp_path, monkeypatch):
    from coremltools.converters.mil.mil.block import InvalidBlockStateError
    from coremltools.converters.mil.mil.passes.graph_pass import AbstractGraphPass
    from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY, register_pass

    name = "ane_test::drop_a_consumer"
    if name not in PASS_REGISTRY:

        @register_pass(namespace="ane_test")
        class drop_a_consumer(AbstractGraphPass):  # noqa: N801 (coremltools names passes so)
            def apply(self, prog):
                for function in prog.functions.values():
                    relu = next(op for op in function.operations if op.op_type == "relu")
                    relu.x.remove_child_op(relu)  # the graph now lies about who reads x

    original = passes.conversion_pipeline

    def broken_pipeline(fp16: bool):
        pipeline = original(fp16)
        pipeline.append_pass(name)  # last: only the validation can notice it
        return pipeline

    monkeypatch.setattr(convert, "conversion_pipeline", broken_pipeline)
    with pytest.raises(InvalidBlockStateError):
        _program_bytes(tmp_path, "broken.mlpackage")
