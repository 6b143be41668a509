"""What ``ane bench`` times for Whisper on the PyTorch CPU.

Why these cases: the encoder runs once per 30 s window, so one window is its whole cost; the
cross-attention K/V also runs once per window; the decoder runs once per token, so its cost
is one step, measured at positions 1, 100 and 400 of the 448-token context to show whether a
step gets slower as the transcript grows (with the static cache it should not: every step
attends over the whole masked cache).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from ane_core.architecture import Architecture, ExportableModel, LatencyCase
from ane_core.layers import MASK_VALUE

DECODER_POSITIONS: tuple[int, ...] = (1, 100, 400)
"""Cache positions a decoder step is timed at (all below Whisper's 448-token context)."""

_ONE_CALL_CASES = {"encoder": "30 s window", "cross_kv": "30 s window"}


def decoder_step_inputs(model: ExportableModel, position: int) -> tuple[torch.Tensor, ...]:
    """The decoder build's example inputs, with the masks moved to ``position``: the update
    mask one-hot there and the padding mask open up to and including it."""
    names = [spec.name for spec in model.inputs]
    inputs = dict(zip(names, model.example_inputs, strict=True))
    context = inputs["kv_cache_update_mask"].shape[-1]
    if not 0 <= position < context:
        raise ValueError(f"position {position} is outside the {context}-token context")
    update = torch.zeros_like(inputs["kv_cache_update_mask"])
    update[..., position] = 1.0
    padding = torch.full_like(inputs["key_padding_mask"], MASK_VALUE)
    padding[..., : position + 1] = 0.0
    inputs["kv_cache_update_mask"], inputs["key_padding_mask"] = update, padding
    return tuple(inputs[name] for name in names)


def latency_cases(
    architecture: Architecture, component: str, variant: str, weights: Any, **options: Any
) -> list[LatencyCase]:
    """One call per window for the encoder and cross K/V; one step per position for the
    decoder. Each case holds its module and inputs, so building is not timed."""
    model = architecture.build(component, variant, weights, **options)
    module = model.module.eval()
    if component == "decoder":
        return [
            LatencyCase(f"token at position {p}", partial(module, *decoder_step_inputs(model, p)))
            for p in DECODER_POSITIONS
        ]
    name = _ONE_CALL_CASES.get(component, "forward")
    return [LatencyCase(name, partial(module, *model.example_inputs))]
