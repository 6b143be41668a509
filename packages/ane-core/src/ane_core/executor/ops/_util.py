"""Small helpers the op modules share.

Why here: an op module that needs another family's math (attention needs softmax) takes it
from this module, never from the other op module, so op modules only ever import downwards
(this module and the registry).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


def axis_of(axis: Any, rank: int) -> int:
    """A MIL axis (possibly negative, possibly a 0-d array) as a non-negative int."""
    value = int(axis)
    return value + rank if value < 0 else value


def axes_of(axes: Any, rank: int) -> tuple[int, ...]:
    """MIL axes (``None`` = every axis) as a tuple of non-negative ints."""
    if axes is None:
        return tuple(range(rank))
    return tuple(axis_of(a, rank) for a in np.atleast_1d(axes))


def erf(x: np.ndarray) -> np.ndarray:
    """Element-wise erf. numpy has none; torch's is vectorised and exact to float32."""
    return torch.special.erf(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def softmax(x: Any, axis: Any = -1) -> np.ndarray:
    """Softmax along ``axis``, with the max subtracted first (as every runtime does); the
    ``softmax`` op itself, and the attention ops' weights."""
    x = np.asarray(x)
    axis = axis_of(axis, x.ndim)
    exps = np.exp(x - np.max(x, axis=axis, keepdims=True))
    exps /= np.sum(exps, axis=axis, keepdims=True)
    return exps


def conv_pads(pad_type: str, pad, spatial, kernel, strides, dilations) -> list[tuple[int, int]]:
    """(before, after) padding per spatial axis, following MIL's pad_type rules."""
    if pad_type == "valid":
        return [(0, 0)] * len(spatial)
    if pad_type == "custom":
        values = [int(p) for p in np.asarray(pad).ravel()]
        return list(zip(values[0::2], values[1::2], strict=True))
    if pad_type in ("same", "same_lower"):
        pads = []
        for size, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
            out = math.ceil(size / s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            small, large = total // 2, total - total // 2
            pads.append((small, large) if pad_type == "same" else (large, small))
        return pads
    raise ValueError(f"conv: unknown pad_type {pad_type!r}")
