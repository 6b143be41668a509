"""Element-wise binary and unary ops (coremltools ``elementwise_binary.py``,
``elementwise_unary.py``). Binary ops broadcast like numpy, as MIL specifies."""

from __future__ import annotations

import operator

import numpy as np

from ane_core.executor.dtypes import dtype_from_name
from ane_core.executor.ops._util import erf
from ane_core.executor.registry import register

_BINARY = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "real_div": operator.truediv,
    "pow": operator.pow,
    "floor_div": operator.floordiv,
    "mod": operator.mod,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "equal": np.equal,
    "not_equal": np.not_equal,
    "less": np.less,
    "less_equal": np.less_equal,
    "greater": np.greater,
    "greater_equal": np.greater_equal,
    "logical_and": np.logical_and,
    "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
}


def _binary(function):
    def evaluate(x, y):
        return function(np.asarray(x), np.asarray(y))

    return evaluate


for _name, _function in _BINARY.items():
    register(_name)(_binary(_function))


_UNARY = {
    "abs": np.abs,
    "acos": np.arccos,
    "asin": np.arcsin,
    "atan": np.arctan,
    "atanh": np.arctanh,
    "ceil": np.ceil,
    "cos": np.cos,
    "cosh": np.cosh,
    "erf": erf,
    "exp": np.exp,
    "exp2": np.exp2,
    "floor": np.floor,
    "logical_not": np.logical_not,
    "round": np.round,  # MIL: halfway cases to even (0.5 -> 0), as np.round
    "sign": np.sign,
    "sin": np.sin,
    "sinh": np.sinh,
    "sqrt": np.sqrt,
    "square": np.square,
    "tan": np.tan,
    "tanh": np.tanh,
    "identity": lambda x: x,
}


def _unary(function):
    def evaluate(x):
        return function(np.asarray(x))

    return evaluate


for _name, _function in _UNARY.items():
    register(_name)(_unary(_function))


@register("inverse")
def inverse(x, epsilon=1e-4):
    """``1 / (x + epsilon)``."""
    return 1.0 / (np.asarray(x) + epsilon)


@register("log")
def log(x, epsilon=1e-45):
    """``log(x + epsilon)``."""
    return np.log(np.asarray(x) + epsilon)


@register("rsqrt")
def rsqrt(x, epsilon=1e-12):
    """``1 / sqrt(x + epsilon)``."""
    return 1.0 / np.sqrt(np.asarray(x) + epsilon)


@register("clip")
def clip(x, alpha, beta):
    """``min(max(x, alpha), beta)``."""
    return np.minimum(np.maximum(x, alpha), beta)


@register("threshold")
def threshold(x, alpha):
    """``max(x, alpha)``."""
    return np.maximum(x, alpha)


@register("cast")
def cast(x, dtype):
    """Convert to ``dtype`` (``fp16``, ``fp32``, ``int32``, ``bool``...); float to int truncates."""
    return np.asarray(x).astype(dtype_from_name(str(dtype)))


@register("select")
def select(cond, a, b):
    """``a`` where ``cond`` else ``b``, broadcasting."""
    return np.where(np.asarray(cond).astype(bool), a, b)
