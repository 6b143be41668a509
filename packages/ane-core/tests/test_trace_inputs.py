"""Tracing from short ``trace_inputs``: the same program as a full-length trace, and a module
that bakes the short length into its graph is refused rather than converted wrong."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from ane_core import convert
from ane_core.architecture import ExportableModel, TensorSpec
from ane_core.layers import LayerNormANE, LinearConv2d, MultiHeadAttentionANE
from ane_core.targets import Precision, parse_target

C, S, SHORT = 32, 24, 3


class _LengthFree(nn.Module):
    """Channels-first attention block plus a positional table sliced to the input length."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = LinearConv2d(C, C)
        self.norm = LayerNormANE(C)
        self.attn = MultiHeadAttentionANE(C, 4)
        self.register_buffer("positions", torch.randn(1, C, 1, S))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x) + self.positions[:, :, :, : x.shape[3]]
        return x + self.attn(self.norm(x))


class _BakesLength(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :, : int(x.shape[3]) - 1] * 2.0  # int(): the tracer keeps a constant


def _model(module: nn.Module, out_len: int, short: bool) -> ExportableModel:
    torch.manual_seed(0)
    x = torch.randn(1, C, 1, S)
    return ExportableModel(
        module=module.eval(),
        inputs=[TensorSpec("x", (1, C, 1, S), "x")],
        outputs=[TensorSpec("y", (1, C, 1, out_len), "y")],
        example_inputs=(x,),
        trace_inputs=(x[..., :SHORT],) if short else None,
    )


def _program(model: ExportableModel):
    target = parse_target("macOS13")[1]
    return convert.to_coreml(convert.trace(model), model, Precision.FP16, target).get_spec()


def test_short_trace_gives_the_same_program_as_a_full_trace():
    torch.manual_seed(1)
    module = _LengthFree()
    full = _program(_model(module, S, short=False))
    short = _program(_model(module, S, short=True))
    assert short.mlProgram == full.mlProgram
    assert short.description.output == full.description.output


def test_a_module_that_bakes_the_length_is_refused():
    model = _model(_BakesLength(), S - 1, short=True)
    with pytest.raises(RuntimeError, match="bakes an input length"):
        _program(model)
    _program(dataclasses.replace(model, trace_inputs=None))  # a full trace is fine


def test_trace_inputs_must_match_the_inputs():
    model = _model(_LengthFree(), S, short=True)
    with pytest.raises(ValueError, match="trace inputs"):
        dataclasses.replace(model, trace_inputs=())
