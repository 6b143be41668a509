"""The components that trace from a few frames convert to the same program as a full trace."""

from __future__ import annotations

import dataclasses

import pytest
from ane_core import convert
from ane_core.targets import Precision, parse_target

from whisper_ane.architecture import WhisperArchitecture


@pytest.mark.parametrize(
    ("component", "variant"), [("encoder", "ane"), ("cross_kv", "ane"), ("cross_kv", "stock")]
)
def test_short_trace_converts_to_the_full_length_program(tiny_en_weights, component, variant):
    model = WhisperArchitecture().build(component, variant, tiny_en_weights)
    assert model.trace_inputs is not None
    assert model.trace_inputs[0].numel() < model.example_inputs[0].numel() // 50
    target = parse_target("macOS13")[1]

    def program(m):
        return convert.to_coreml(convert.trace(m), m, Precision.FP16, target).get_spec()

    short = program(model)
    full = program(dataclasses.replace(model, trace_inputs=None))
    assert short.mlProgram == full.mlProgram
    assert short.description == full.description


def test_stock_encoder_traces_at_full_length(tiny_en_weights):
    """openai-whisper's encoder asserts the 3000-frame input, so it cannot trace short."""
    assert WhisperArchitecture().build("encoder", "stock", tiny_en_weights).trace_inputs is None


def test_ane_encoder_refuses_a_short_mel_outside_a_trace(tiny_en_weights):
    """The positional table is sliced to the input length only so that a trace may be short;
    an eager call with the wrong length still fails, as stock whisper's assert does."""
    model = WhisperArchitecture().build("encoder", "ane", tiny_en_weights)
    with pytest.raises(ValueError, match="frames"):
        model.module(model.trace_inputs[0])
