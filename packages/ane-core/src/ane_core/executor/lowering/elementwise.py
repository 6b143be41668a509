"""Element-wise ops in torch, twins of :mod:`ane_core.executor.ops.elementwise` and the simple
activations of :mod:`ane_core.executor.ops.activation`.

``+ - * /``, comparisons, ``maximum``, ``select`` and casts are IEEE-exact in both libraries,
so they are bit-equal to the numpy ops; transcendental functions (``exp``, ``tanh``, ``pow``,
...) and ``sqrt``/``rsqrt``/``inverse`` (measured: torch's vectorised ``sqrt`` and ``1 / x``
differ from numpy's in the last float32 bit on a few elements) come from other routines and
are registered as accumulating (one float16 step
at most, see :data:`~ane_core.executor.lowering.registry.ACCUMULATING`). ``erf`` is torch's in
both executors, so GELU's exact mode is bit-equal too.
"""

from __future__ import annotations

import math

import torch

from ane_core.executor.dtypes import dtype_from_name
from ane_core.executor.lowering.registry import register
from ane_core.executor.lowering.values import torch_dtype

_EXACT_BINARY = {
    "add": torch.add,
    "sub": torch.sub,
    "mul": torch.mul,
    "real_div": torch.true_divide,
    "floor_div": torch.floor_divide,
    "mod": torch.remainder,
    "maximum": torch.maximum,
    "minimum": torch.minimum,
    "equal": torch.eq,
    "not_equal": torch.ne,
    "less": torch.lt,
    "less_equal": torch.le,
    "greater": torch.gt,
    "greater_equal": torch.ge,
    "logical_and": torch.logical_and,
    "logical_or": torch.logical_or,
    "logical_xor": torch.logical_xor,
}


def _binary(function):
    def evaluate(x, y):
        return function(torch.as_tensor(x), torch.as_tensor(y))

    return evaluate


for _name, _function in _EXACT_BINARY.items():
    register(_name)(_binary(_function))
register("pow", accumulates=True)(_binary(torch.pow))

_EXACT_UNARY = {
    "abs": torch.abs,
    "ceil": torch.ceil,
    "floor": torch.floor,
    "logical_not": torch.logical_not,
    "round": torch.round,  # halfway cases to even, as np.round
    "sign": torch.sign,
    "square": torch.square,
    "identity": lambda x: x,
    "erf": torch.special.erf,  # the numpy executor calls torch's erf too
    "relu": torch.relu,
}
_LIBM_UNARY = {
    "acos": torch.acos,
    "asin": torch.asin,
    "atan": torch.atan,
    "atanh": torch.atanh,
    "cos": torch.cos,
    "cosh": torch.cosh,
    "exp": torch.exp,
    "sqrt": torch.sqrt,  # torch's vectorised routine can differ from numpy's in the last bit
    "exp2": torch.exp2,
    "sin": torch.sin,
    "sinh": torch.sinh,
    "tan": torch.tan,
    "tanh": torch.tanh,
}


def _unary(function):
    def evaluate(x):
        return function(torch.as_tensor(x))

    return evaluate


for _name, _function in _EXACT_UNARY.items():
    register(_name)(_unary(_function))
for _name, _function in _LIBM_UNARY.items():
    register(_name, accumulates=True)(_unary(_function))


@register("inverse", accumulates=True)
def inverse(x, epsilon=1e-4):
    return 1.0 / (x + epsilon)


@register("log", accumulates=True)
def log(x, epsilon=1e-45):
    return torch.log(x + epsilon)


@register("rsqrt", accumulates=True)
def rsqrt(x, epsilon=1e-12):
    return 1.0 / torch.sqrt(x + epsilon)


@register("clip")
def clip(x, alpha, beta):
    return torch.minimum(torch.maximum(x, torch.as_tensor(alpha)), torch.as_tensor(beta))


@register("threshold")
def threshold(x, alpha):
    return torch.maximum(x, torch.as_tensor(alpha))


@register("cast")
def cast(x, dtype):
    return torch.as_tensor(x).to(torch_dtype(dtype_from_name(str(dtype))))


@register("select")
def select(cond, a, b):
    return torch.where(torch.as_tensor(cond).to(torch.bool), a, b)


def _sigmoid(x: torch.Tensor) -> torch.Tensor:
    return 1.0 / (1.0 + torch.exp(-x))


@register("sigmoid", accumulates=True)
def sigmoid(x):
    return _sigmoid(x)


@register("silu", accumulates=True)
def silu(x):
    return x * _sigmoid(x)


_SQRT_2 = torch.tensor(math.sqrt(2.0), dtype=torch.float32)


@register("gelu", accumulates=True)
def gelu(x, mode="EXACT"):
    """The numpy op's three formulas, operation for operation (EXACT is then bit-equal;
    computed in place, two tensors instead of five)."""
    mode = str(mode)
    if mode == "EXACT":
        y = x / _SQRT_2
        torch.special.erf(y, out=y)
        return y.add_(1.0).mul_(0.5 * x)
    if mode == "TANH_APPROXIMATION":
        inner = torch.tensor(math.sqrt(2.0 / math.pi), dtype=torch.float32) * (
            x + torch.tensor(0.044715, dtype=torch.float32) * x**3
        )
        return 0.5 * x * (1.0 + torch.tanh(inner))
    if mode == "SIGMOID_APPROXIMATION":
        return x * _sigmoid(torch.tensor(1.702, dtype=torch.float32) * x)
    raise ValueError(f"gelu: unknown mode {mode!r}")
