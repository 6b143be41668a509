"""Conversions between the sequence-first ``(B, S, C)`` layout and the ANE layout ``(B, C, 1, S)``.

Why: Apple's "Deploying Transformers on the Apple Neural Engine" (principle 1, *picking the
right data format*) explains that the ANE stores tensors 4-D and channels-first, and that the
last axis of every buffer is padded to 64 bytes. A ``(B, S, C)`` tensor with a small last axis
(say 1 or 2 fp16 values) would be padded 32x or 16x; placing the *sequence* on the last axis and
the *channels* on axis 1 makes the padding negligible and lets every ``nn.Linear`` run as a 1x1
``nn.Conv2d`` (principle: Linear -> 1x1 conv), which is the layout the ANE's convolution engine
consumes natively. The singleton axis 2 is the "height" of that 2-D convolution.

Models built from :mod:`ane_core.layers` keep the ``(B, C, 1, S)`` layout end to end and use
these two helpers only at their boundaries (after the embeddings, before the logits).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

__all__ = ["static_size", "to_channels_first", "to_sequence_first"]


def static_size(x: Tensor, dim: int) -> int:
    """``x.shape[dim]`` as a Python ``int``, also under ``torch.jit.trace``.

    While tracing, shape entries are 0-d tensors and arithmetic on them is recorded in the
    graph (``aten::size`` -> ``floor_divide`` -> ...), which coremltools may fail to fold (e.g.
    ``int[]`` of a non-scalar). Core ML programs for the ANE have static channel counts (they are
    fixed by the weights), so the layers bake those in as constants through this helper, without
    the ``TracerWarning`` that a bare ``int()`` emits. Do not use it for axes that must stay
    symbolic (flexible sequence lengths): the layers never need those sizes.
    """
    size = x.shape[dim]
    if isinstance(size, int):
        return size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return int(size)


def to_channels_first(x: Tensor) -> Tensor:
    """Map a sequence-first ``(B, S, C)`` tensor to the ANE layout ``(B, C, 1, S)``.

    The result is a view (``transpose`` + ``unsqueeze``); in a traced graph it is one
    ``transpose`` and one ``expand_dims``, done once at the model boundary.
    """
    if x.dim() != 3:
        raise ValueError(
            f"to_channels_first expects a (B, S, C) tensor, got shape {tuple(x.shape)}"
        )
    return x.transpose(1, 2).unsqueeze(2)


def to_sequence_first(x: Tensor) -> Tensor:
    """Map an ANE-layout ``(B, C, 1, S)`` tensor back to sequence-first ``(B, S, C)``.

    Inverse of :func:`to_channels_first` (also a view).
    """
    if x.dim() != 4 or static_size(x, 2) != 1:
        raise ValueError(
            f"to_sequence_first expects a (B, C, 1, S) tensor, got shape {tuple(x.shape)}"
        )
    return x.squeeze(2).transpose(1, 2)
