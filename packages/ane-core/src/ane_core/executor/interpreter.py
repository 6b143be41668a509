"""Evaluate a MIL program with numpy: :class:`Program`.

Loading compiles the main function's block once into a list of steps (op function, argument
names, declared output dtypes, values to free afterwards). Constants, and every op whose
inputs are all constants (dequantisation of compressed weights above all), are evaluated at
load time and cached, so calling the program repeatedly (decoding calls it per token) only
runs the ops that depend on the inputs. Numerics: see :mod:`ane_core.executor.dtypes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ane_core._coremltools import coremltools
from ane_core.errors import AneError
from ane_core.executor import ops as _ops  # noqa: F401 (registers every op before a lookup)
from ane_core.executor.dtypes import compute_dtype, numpy_dtype, settle
from ane_core.executor.errors import ProgramInputError, UnsupportedOpError
from ane_core.executor.loading import load_mil_program
from ane_core.executor.registry import OpFunction, lookup, moves_data

ArgRef = str | tuple[str, ...]


@dataclass(frozen=True)
class TensorInfo:
    """A program input, output or state: name, shape (``None`` for a flexible axis), dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype


@dataclass
class _Step:
    function: OpFunction
    op_type: str
    op_name: str
    args: dict[str, ArgRef]
    outputs: list[tuple[str, np.dtype]]
    moves_data: bool = False
    release: tuple[str, ...] = ()

    def arguments(self, env: dict[str, Any]) -> dict[str, Any]:
        """The op's keyword arguments, read from ``env`` (variadic inputs as tuples)."""
        return {
            param: env[ref] if isinstance(ref, str) else tuple(env[n] for n in ref)
            for param, ref in self.args.items()
        }


def _types():
    return coremltools().converters.mil.mil.types


def _shape(var: Any) -> tuple[int | None, ...]:
    sym_type = var.sym_type
    if _types().is_state(sym_type):
        sym_type = sym_type.wrapped_type()
    if not _types().is_tensor(sym_type):
        return ()
    return tuple(d if isinstance(d, (int, np.integer)) else None for d in sym_type.get_shape())


def _hold_const(value: Any) -> Any:
    """A constant in the compute dtype (float16 weights are widened once, exactly)."""
    if isinstance(value, (np.ndarray, np.generic)):
        held = compute_dtype(value.dtype)
        return np.asarray(value, dtype=held) if held != value.dtype else np.asarray(value)
    return value


def _names(ref: ArgRef) -> tuple[str, ...]:
    return (ref,) if isinstance(ref, str) else ref


class Program:
    """A saved ML program evaluated by numpy: load once, call many times.

    ``program(inputs)`` takes a mapping of input name to array (float inputs are rounded to
    the declared dtype, so float32 arrays may be given to an fp16 program) and returns a dict
    of output name to array in the declared dtype. Stateful programs also take
    ``state=program.new_state()``, which they update in place, as Core ML's ``MLState``.
    """

    def __init__(self, mil_program: Any, *, function: str = "main", source: str = "") -> None:
        if function not in mil_program.functions:
            raise ProgramInputError(
                f"program {source} has no function {function!r}.",
                f"Use one of: {', '.join(mil_program.functions)}.",
            )
        main = mil_program.functions[function]
        self.source = source
        self.inputs: dict[str, TensorInfo] = {}
        self.states: dict[str, TensorInfo] = {}
        for name, var in main.inputs.items():
            info = TensorInfo(name, _shape(var), numpy_dtype(var.sym_type))
            (self.states if _types().is_state(var.sym_type) else self.inputs)[name] = info
        self.outputs: dict[str, TensorInfo] = {
            var.name: TensorInfo(var.name, _shape(var), numpy_dtype(var.sym_type))
            for var in main.outputs
        }
        self._consts: dict[str, Any] = {}
        self._steps: list[_Step] = []
        for op in main.operations:
            self._compile(op)
        self._plan_release()

    @classmethod
    def load(cls, path: str | Path, *, function: str = "main") -> Program:
        """Load the package at ``path`` (weights included) and prepare it for calls."""
        return cls(load_mil_program(path), function=function, source=str(path))

    # -- compilation --------------------------------------------------------------------

    def _compile(self, op: Any) -> None:
        if op.op_type == "const":
            self._consts[op.outputs[0].name] = _hold_const(op.outputs[0].val)
            return
        if op.blocks:
            raise UnsupportedOpError(op.op_type, op.name)
        args: dict[str, ArgRef] = {}
        for param, value in op.inputs.items():
            if isinstance(value, (list, tuple)):
                args[param] = tuple(v.name for v in value)
            else:
                args[param] = value.name
        step = _Step(
            function=lookup(op.op_type, op.name),
            op_type=op.op_type,
            op_name=op.name,
            args=args,
            outputs=[(var.name, numpy_dtype(var.sym_type)) for var in op.outputs],
            moves_data=moves_data(op.op_type),
        )
        if all(n in self._consts for ref in args.values() for n in _names(ref)):
            self._execute(step, self._consts)  # constant folding: runs once, at load
        else:
            self._steps.append(step)

    def _plan_release(self) -> None:
        """Free each intermediate right after its last reader (big attention maps add up)."""
        last_use: dict[str, int] = {}
        for index, step in enumerate(self._steps):
            for ref in step.args.values():
                for name in _names(ref):
                    if name not in self._consts:
                        last_use[name] = index
        keep = set(self.outputs) | set(self.states)
        by_step: dict[int, list[str]] = {}
        for name, index in last_use.items():
            if name not in keep:
                by_step.setdefault(index, []).append(name)
        for index, step in enumerate(self._steps):
            step.release = tuple(by_step.get(index, ()))

    # -- evaluation ---------------------------------------------------------------------

    @staticmethod
    def _evaluate(step: _Step, function: OpFunction, env: dict[str, Any]) -> tuple[Any, ...]:
        """Call ``function`` (the step's op, or its lowering) on the step's arguments from
        ``env``; an op that fails is named in the error."""
        try:
            result = function(**step.arguments(env))
        except AneError:
            raise
        except Exception as error:
            raise RuntimeError(
                f"MIL op {step.op_type} ({step.op_name!r}) failed: {error}"
            ) from error
        values = result if isinstance(result, tuple) else (result,)
        if len(values) != len(step.outputs):
            raise RuntimeError(
                f"MIL op {step.op_type} ({step.op_name!r}) gave {len(values)} outputs, "
                f"the program declares {len(step.outputs)}"
            )
        return values

    @classmethod
    def _execute(cls, step: _Step, env: dict[str, Any]) -> None:
        values = cls._evaluate(step, step.function, env)
        for (name, dtype), value in zip(step.outputs, values, strict=True):
            if step.moves_data and getattr(value, "dtype", None) == compute_dtype(dtype):
                env[name] = value  # values of an already rounded input
            else:
                env[name] = settle(value, dtype)

    def new_state(self) -> dict[str, np.ndarray]:
        """Zero-filled state buffers, one per state the program declares."""
        return {
            name: np.zeros([d or 0 for d in info.shape], dtype=info.dtype)
            for name, info in self.states.items()
        }

    def write_state(self, state: dict[str, np.ndarray], name: str, value: Any) -> None:
        """Fill the state variable ``name`` of ``state`` with ``value`` (converted to the
        state's dtype), as an app writes a state through ``MLState`` before predicting."""
        if name not in self.states:
            raise ProgramInputError(
                f"program {self.source} has no state {name!r}.",
                f"Its states are: {', '.join(self.states) or 'none'}.",
            )
        buffer = state[name]
        value = np.asarray(value)
        if value.shape != buffer.shape:
            raise ProgramInputError(
                f"state {name!r} has shape {buffer.shape}, the value {value.shape}.",
                "Pass a value of the state's shape.",
            )
        np.copyto(buffer, value, casting="unsafe")

    def _check_inputs(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The inputs, checked, each rounded to its declared dtype and held for computing."""
        return {
            name: settle(array, self.inputs[name].dtype)
            for name, array in self._checked_arrays(inputs).items()
        }

    def _checked_arrays(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The inputs as arrays, exactly the declared names with the declared shapes."""
        missing = [name for name in self.inputs if name not in inputs]
        extra = [name for name in inputs if name not in self.inputs]
        if missing or extra:
            raise ProgramInputError(
                f"inputs {sorted(inputs)} do not match the program's {list(self.inputs)}.",
                "Pass exactly the inputs the package declares.",
            )
        held = {}
        for name, info in self.inputs.items():
            array = np.asarray(inputs[name])
            expected = info.shape
            if len(array.shape) != len(expected) or any(
                e is not None and e != a for e, a in zip(expected, array.shape, strict=False)
            ):
                raise ProgramInputError(
                    f"input {name!r} has shape {array.shape}, the program expects {expected}."
                )
            held[name] = array
        return held

    def __call__(
        self, inputs: Mapping[str, Any], state: dict[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        env: dict[str, Any] = self._start_env(inputs)
        if self.states:
            if state is None or set(state) != set(self.states):
                raise ProgramInputError(
                    f"program {self.source} is stateful (states {list(self.states)}).",
                    "Pass state=program.new_state() and reuse it across calls.",
                )
            env.update(state)
        self._run(env)
        return {
            name: np.asarray(env[name]).astype(info.dtype, copy=False)
            for name, info in self.outputs.items()
        }

    def _start_env(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The values a call starts from: the constants and the checked inputs."""
        env: dict[str, Any] = dict(self._consts)
        env.update(self._check_inputs(inputs))
        return env

    def _run(self, env: dict[str, Any]) -> None:
        """Every step in order, each intermediate freed after its last reader."""
        for step in self._steps:
            self._execute(step, env)
            for name in step.release:
                del env[name]
