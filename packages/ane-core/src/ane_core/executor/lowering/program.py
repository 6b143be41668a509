"""A MIL program lowered to PyTorch ops once, at load: :class:`LoweredProgram`.

Why: the numpy executor is the oracle, and it is slow where numpy is (its ``exp`` is
single-threaded, every float16 rounding is several passes, a decoder step converts megabytes
of cross K/V). Lowering keeps everything the oracle decides: the same steps in the same
order, the same constant folding (done by the numpy ops, at load), the same rounding of every
op output to its declared dtype; only the arithmetic of each op runs in torch. An op with no
lowering runs its numpy op on views of the tensors, so the lowered program runs every
program the numpy one runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ane_core.executor import lowering as _lowering  # noqa: F401 (registers every lowering)
from ane_core.executor.interpreter import Program, _Step
from ane_core.executor.lowering.registry import TorchFunction, lowered
from ane_core.executor.lowering.values import held_dtype, settle, to_numpy, to_torch


def _on_numpy(function: TorchFunction) -> TorchFunction:
    """A numpy op run on numpy views of its tensor arguments, its result back as tensors."""

    def evaluate(**kwargs: Any) -> Any:
        result = function(**{name: to_numpy(value) for name, value in kwargs.items()})
        if isinstance(result, tuple):
            return tuple(_tensor(v) for v in result)
        return _tensor(result)

    return evaluate


def _tensor(value: Any) -> torch.Tensor:
    array = np.asarray(value)
    if any(stride < 0 for stride in array.strides) or not array.flags.writeable:
        array = np.array(array, copy=True)
    return to_torch(array)


def _fresh(value: torch.Tensor, step: _Step, env: dict[str, Any]) -> bool:
    """Whether ``value`` is memory the op allocated (not a view, not one of its arguments):
    only then may it be rounded in place."""
    if value._base is not None:
        return False
    for ref in step.args.values():
        for name in (ref,) if isinstance(ref, str) else ref:
            argument = env.get(name)
            if isinstance(argument, torch.Tensor) and (
                argument is value or argument.data_ptr() == value.data_ptr()
            ):
                return False
    return True


class LoweredProgram(Program):
    """:class:`~ane_core.executor.Program`'s interface and numerics, evaluated by torch.

    ``engine`` is ``"torch"`` (the numpy program's is ``"numpy"``). ``lowered_steps`` and
    ``numpy_steps`` count the ops each way.
    """

    engine = "torch"

    def __init__(self, mil_program: Any, *, function: str = "main", source: str = "") -> None:
        super().__init__(mil_program, function=function, source=source)
        self._tensors = {name: to_torch(value) for name, value in self._consts.items()}
        self._functions: list[tuple[TorchFunction, _Step]] = []
        self.numpy_steps: list[str] = []
        for step in self._steps:
            function = lowered(step.op_type)
            if function is None:
                self.numpy_steps.append(step.op_type)
                function = _on_numpy(step.function)
            self._functions.append((function, step))
        self.lowered_steps = len(self._steps) - len(self.numpy_steps)

    def _start_env(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        env: dict[str, Any] = dict(self._tensors)
        for name, array in self._checked_arrays(inputs).items():
            declared = self.inputs[name].dtype
            if array.dtype == declared:  # float16 is widened exactly: no rounding to do
                env[name] = to_torch(np.ascontiguousarray(array)).to(held_dtype(declared))
            else:
                env[name] = settle(to_torch(np.ascontiguousarray(array)), declared)
        return env

    def _run(self, env: dict[str, Any]) -> None:
        with torch.inference_mode():
            for function, step in self._functions:
                values = self._evaluate(step, function, env)
                for (name, dtype), value in zip(step.outputs, values, strict=True):
                    if not isinstance(value, torch.Tensor) or value.dtype != held_dtype(dtype):
                        env[name] = settle(value, dtype)
                    elif step.moves_data:
                        env[name] = value  # values of an already rounded input
                    else:
                        env[name] = settle(value, dtype, in_place=_fresh(value, step, env))
                for name in step.release:
                    del env[name]
