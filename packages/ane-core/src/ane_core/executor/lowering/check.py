"""Check the lowering against the numpy oracle op by op: :func:`compare_ops`.

Why op by op: comparing only a program's outputs would let two errors cancel and would blame
the end of a chain for its start. Here every step is evaluated by both engines on the same
arguments (the numpy oracle's values), and each output is compared in units in the last
place (ULP) of its declared dtype: bit-equal ops must give 0, accumulating ops stay within
:data:`SCALE_STEPS` (see :data:`~ane_core.executor.lowering.registry.ACCUMULATING`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ane_core.executor.dtypes import settle as numpy_settle
from ane_core.executor.interpreter import Program
from ane_core.executor.lowering.program import LoweredProgram
from ane_core.executor.lowering.registry import ACCUMULATING
from ane_core.executor.lowering.values import settle, to_numpy, to_torch

SCALE_STEPS = 16
"""The documented bound for accumulating ops, per element: ``|lowered - oracle| <= 1 ULP of
the declared dtype at the element's magnitude + SCALE_STEPS * eps32 * max|oracle tensor|``.
Why that shape: two float32 sums of the same products in another order (or two libm ``exp``)
differ by about ``n * eps32`` of the magnitudes summed, not of the result; where a sum cancels
(a layer norm's centred value, a conv output near zero) that is many ULP of the small result
but a tiny part of the tensor's scale. Rounding to float16 then adds at most one float16 step.
16 float32 steps leave a wide margin: every Whisper and BERT op stays far
below it (``tests/test_executor_lowering.py`` prints the worst)."""


@dataclass(frozen=True)
class OpDifference:
    """How far one op's lowered output is from the oracle's."""

    op_type: str
    op_name: str
    output: str
    dtype: str
    accumulating: bool
    ulp: float
    """The largest difference in ULP of the declared dtype at each element's magnitude
    (0: bit-equal)."""
    scale_steps: float
    """The largest difference beyond one such ULP, in float32 steps of the tensor's largest
    magnitude (what :data:`SCALE_STEPS` bounds)."""
    unequal: int
    """How many elements differ at all."""

    @property
    def within_bound(self) -> bool:
        if not self.accumulating:
            return self.ulp == 0
        return self.scale_steps <= SCALE_STEPS


def _spacing(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.spacing(np.abs(values).astype(dtype)).astype(np.float64)


def ulp_distance(
    oracle: np.ndarray, lowered: np.ndarray, dtype: np.dtype
) -> tuple[float, float, int]:
    """(largest difference in ULP, largest excess over one ULP in float32 steps of the
    tensor's scale, number of unequal elements) of two values of ``dtype``."""
    a, b = np.asarray(oracle), np.asarray(lowered)
    if a.shape != b.shape:
        return float("inf"), float("inf"), max(a.size, b.size)
    if dtype.kind != "f":
        unequal = int(np.count_nonzero(a != b))
        return (float("inf"), float("inf"), unequal) if unequal else (0.0, 0.0, 0)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    same = (a64 == b64) | (np.isnan(a64) & np.isnan(b64))
    unequal = int(np.count_nonzero(~same))
    if not unequal:
        return 0.0, 0.0, 0
    difference = np.where(same, 0.0, np.abs(a64 - b64))
    step = np.minimum(_spacing(a, dtype), _spacing(b, dtype))
    scale = float(np.nanmax(np.abs(np.where(np.isfinite(a64), a64, 0.0))))
    scale_step = scale * float(np.finfo(np.float32).eps) or float(np.finfo(np.float32).tiny)
    excess = np.maximum(difference - step, 0.0) / scale_step
    return float(np.nanmax(difference / step)), float(np.nanmax(excess)), unequal


def compare_ops(
    program: LoweredProgram, inputs: Mapping[str, Any], state: dict | None = None
) -> list[OpDifference]:
    """Run ``program``'s steps with the numpy oracle and, on the same arguments, with their
    lowerings; one :class:`OpDifference` per op output. ``state`` (stateful programs) is
    updated by the oracle only."""
    env = Program._start_env(program, inputs)
    if state is not None:
        env.update(state)
    differences = []
    for function, step in program._functions:
        kwargs = step.arguments(env)
        lowered_kwargs = {
            param: tuple(_argument(v) for v in value)
            if isinstance(value, tuple)
            else _argument(value)
            for param, value in kwargs.items()
        }
        with torch.inference_mode():
            lowered = function(**lowered_kwargs)
        Program._execute(step, env)
        values = lowered if isinstance(lowered, tuple) else (lowered,)
        for (name, dtype), value in zip(step.outputs, values, strict=True):
            mine = to_numpy(settle(value, dtype)).astype(dtype)
            theirs = np.asarray(numpy_settle(env[name], dtype)).astype(dtype)
            ulp, scale_steps, unequal = ulp_distance(theirs, mine, dtype)
            differences.append(
                OpDifference(
                    step.op_type,
                    step.op_name,
                    name,
                    dtype.name,
                    step.op_type in ACCUMULATING,
                    ulp,
                    scale_steps,
                    unequal,
                )
            )
    return differences


def _argument(value: Any) -> Any:
    """An oracle value as the lowering receives it (state buffers stay numpy arrays)."""
    if isinstance(value, np.ndarray) and value.dtype == np.float16:
        return value  # a state buffer: read_state and coreml_update_state take it as it is
    return (
        to_torch(np.array(value, copy=True)) if isinstance(value, np.ndarray) else to_torch(value)
    )
