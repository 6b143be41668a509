"""The lowering registry: MIL op type -> the PyTorch function that evaluates it.

Each function mirrors the numpy op of the same type (:mod:`ane_core.executor.ops`): same
keyword arguments, same defaults, same float32 arithmetic. Variable inputs arrive as torch
tensors (floats held in float32, as the numpy executor holds them); constant inputs arrive as
torch tensors too (see :func:`ane_core.executor.lowering.values.to_torch`), so a function reads
a shape or an axis with :func:`ints`. The program rounds whatever a function returns to the
declared dtype, exactly as the numpy executor does.

Why a second registry instead of torch inside the numpy ops: the numpy executor stays the
oracle, written once from coremltools' op definitions and never optimised for speed; a lowered
op is checked against it (``tests/test_executor_lowering.py``), op by op.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

TorchFunction = Callable[..., Any]

_LOWERED: dict[str, TorchFunction] = {}

ACCUMULATING: set[str] = set()
"""Op types whose float32 result depends on the order of a sum or on a libm routine (matmul,
conv, reductions, exp, erf, ...): torch and numpy may differ there by a float32 rounding, which
rounding to float16 turns into at most one float16 step. Every other lowered op is bit-equal."""


def register(*op_types: str, accumulates: bool = False) -> Callable[[TorchFunction], TorchFunction]:
    """Register a torch function for MIL op types; ``accumulates``: see :data:`ACCUMULATING`."""

    def decorate(function: TorchFunction) -> TorchFunction:
        for op_type in op_types:
            if op_type in _LOWERED:
                raise ValueError(f"MIL op {op_type!r} lowered twice")
            _LOWERED[op_type] = function
            if accumulates:
                ACCUMULATING.add(op_type)
        return function

    return decorate


def lowered(op_type: str) -> TorchFunction | None:
    """The torch function for ``op_type``, or ``None`` (the program then runs the numpy op)."""
    return _LOWERED.get(op_type)


def lowered_ops() -> list[str]:
    """Every MIL op type with a torch lowering, sorted."""
    return sorted(_LOWERED)


def ints(value: Any) -> list[int]:
    """A shape, axes or permutation argument (tensor, array or number) as a list of ints."""
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.reshape(-1).tolist()]
    return [int(v) for v in np.ravel(value)]


def axis_of(axis: Any, rank: int) -> int:
    """A MIL axis (negative, a 0-d tensor) as a non-negative int."""
    (value,) = ints(axis)
    return value + rank if value < 0 else value


def axes_of(axes: Any, rank: int) -> list[int]:
    """MIL axes (``None``: every axis) as non-negative ints."""
    if axes is None:
        return list(range(rank))
    return [a + rank if a < 0 else a for a in ints(axes)]


def flag(value: Any) -> bool:
    """A MIL bool argument (tensor, array or bool)."""
    if isinstance(value, torch.Tensor):
        return bool(value.item())
    return bool(value)
