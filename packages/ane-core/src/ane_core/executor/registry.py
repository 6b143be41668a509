"""The op registry: MIL op type -> the numpy function that evaluates it.

Each function takes the op's MIL inputs as keyword arguments, named as in coremltools' op
definitions (``coremltools/converters/mil/mil/ops/defs``), with Python defaults equal to the
definitions' ``default_inputs``. Variadic inputs (``concat``'s ``values``) arrive as tuples.
Float tensors arrive in float32 (see :mod:`ane_core.executor.dtypes`); the interpreter rounds
whatever the function returns to the dtype the program declares, so functions need not care
about fp16.

The registry is the bottom of the executor: op modules (:mod:`ane_core.executor.ops`) import it
to register, and it imports none of them. Whatever looks ops up imports the ``ops`` package
first (the interpreter does), so every op is registered before the first lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ane_core.executor.errors import UnsupportedOpError

OpFunction = Callable[..., Any]

_OPS: dict[str, OpFunction] = {}
_MOVES_DATA: set[str] = set()


def register(*op_types: str, moves_data: bool = False) -> Callable[[OpFunction], OpFunction]:
    """Register a function for one or more MIL op types.

    ``moves_data``: the op only copies, reorders or selects input values (reshape, split,
    slice...), so its outputs need no rounding when its inputs were already rounded.
    """

    def decorate(function: OpFunction) -> OpFunction:
        for op_type in op_types:
            if op_type in _OPS:
                raise ValueError(f"MIL op {op_type!r} registered twice")
            _OPS[op_type] = function
            if moves_data:
                _MOVES_DATA.add(op_type)
        return function

    return decorate


def lookup(op_type: str, op_name: str | None = None) -> OpFunction:
    """The function for ``op_type``, or :class:`UnsupportedOpError` naming the op."""
    try:
        return _OPS[op_type]
    except KeyError:
        raise UnsupportedOpError(op_type, op_name) from None


def moves_data(op_type: str) -> bool:
    """Whether ``op_type`` was registered as only moving data (see :func:`register`)."""
    return op_type in _MOVES_DATA


def registered_ops() -> list[str]:
    """Every MIL op type registered so far, sorted (see :func:`supported_ops`)."""
    return sorted(_OPS)
