"""``conv``, ``linear``, ``matmul`` and ``einsum`` in torch (twins of
:mod:`ane_core.executor.ops.conv` and :mod:`ane_core.executor.ops.linear`).

All accumulate in float32 like the numpy ops; the order of the sums is the BLAS library's, so
they are registered as accumulating. A 1x1 convolution (the ANE layout's Linear) runs as one
matmul, as in the numpy op.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ane_core.executor.lowering.registry import flag, ints, register
from ane_core.executor.ops._util import conv_pads

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


@register("conv", accumulates=True)
def conv(x, weight, bias=None, strides=None, pad_type="valid", pad=None, dilations=None, groups=1):
    n_spatial = x.ndim - 2
    kernel = tuple(weight.shape[2:])
    strides = [1] * n_spatial if strides is None else ints(strides)
    dilations = [1] * n_spatial if dilations is None else ints(dilations)
    pad_arg = None if pad is None else ints(pad)
    pads = conv_pads(str(pad_type), pad_arg, tuple(x.shape[2:]), kernel, strides, dilations)
    groups = ints(groups)[0]
    if (
        all(k == 1 for k in kernel)
        and all(s == 1 for s in strides)
        and groups == 1
        and all(p == (0, 0) for p in pads)
    ):
        n, c = x.shape[:2]
        y = torch.matmul(weight.reshape(weight.shape[0], c), x.reshape(n, c, -1))
        y = y.reshape((n, weight.shape[0]) + tuple(x.shape[2:]))
        return y if bias is None else y + bias.reshape((-1,) + (1,) * n_spatial)
    if any(p != (0, 0) for p in pads):
        x = F.pad(x, [amount for before_after in reversed(pads) for amount in before_after])
    return _CONV[n_spatial](
        x, weight, bias, stride=strides, padding=0, dilation=dilations, groups=groups
    )


@register("linear", accumulates=True)
def linear(x, weight, bias=None):
    y = torch.matmul(x, weight.T)
    return y if bias is None else y + bias


def _swap_last(a: torch.Tensor) -> torch.Tensor:
    return a.transpose(-1, -2) if a.ndim >= 2 else a


@register("matmul", accumulates=True)
def matmul(x, y, transpose_x=False, transpose_y=False):
    if flag(transpose_x):
        x = _swap_last(x)
    if flag(transpose_y):
        y = _swap_last(y)
    return torch.matmul(x, y)


@register("einsum", accumulates=True)
def einsum(values, equation):
    """torch's einsum, with size-1 axes of a label shared by both operands broadcast first (MIL
    allows it, as the numpy op does; torch.einsum does not)."""
    equation = str(equation).replace(" ", "")
    operands = list(values)
    inputs = equation.split("->")[0].split(",")
    if "..." not in equation and len(inputs) == len(operands):
        sizes: dict[str, int] = {}
        for labels, operand in zip(inputs, operands, strict=True):
            for label, size in zip(labels, operand.shape, strict=True):
                sizes[label] = max(sizes.get(label, 1), size)
        operands = [
            operand.expand([sizes[label] for label in labels])
            for labels, operand in zip(inputs, operands, strict=True)
        ]
    return torch.einsum(equation, *operands)
