"""Small helpers the op modules share."""

from __future__ import annotations

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
