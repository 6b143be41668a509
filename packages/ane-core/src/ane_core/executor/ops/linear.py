"""``linear``, ``matmul`` and ``einsum`` (coremltools ``linear.py``), all on BLAS matmuls.

Why einsum is rewritten as a matmul: ``np.einsum`` falls back to a single-threaded loop when
both operands share batch axes (split-einsum attention does: ``bkhc,bchq->bkhq``), which is
tens of times slower than the transposes plus one batched ``np.matmul`` done here.
"""

from __future__ import annotations

import math

import numpy as np

from ane_core.executor.registry import register


@register("linear")
def linear(x, weight, bias=None):
    """``x @ weight.T + bias``; ``weight`` is ``(out, in)``."""
    y = np.matmul(x, np.asarray(weight).T)
    return y if bias is None else y + bias


def _swap_last(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2) if a.ndim >= 2 else a


@register("matmul")
def matmul(x, y, transpose_x=False, transpose_y=False):
    """numpy ``matmul`` (rank-1 and broadcast rules included) after the optional transposes."""
    x, y = np.asarray(x), np.asarray(y)
    if bool(transpose_x):
        x = _swap_last(x)
    if bool(transpose_y):
        y = _swap_last(y)
    return np.matmul(x, y)


def _parse(equation: str) -> tuple[str, str, str] | None:
    """``(left, right, out)`` labels of a plain two-operand equation, else ``None``."""
    equation = equation.replace(" ", "")
    if "..." in equation or "->" not in equation:
        return None
    inputs, out = equation.split("->")
    operands = inputs.split(",")
    if len(operands) != 2:
        return None
    left, right = operands
    if any(len(set(labels)) != len(labels) for labels in (left, right, out)):
        return None
    return left, right, out


def _sum_private(a: np.ndarray, labels: str, keep: str) -> tuple[np.ndarray, str]:
    """Sum out labels that appear in this operand only and not in the output."""
    drop = [i for i, c in enumerate(labels) if c not in keep]
    if not drop:
        return a, labels
    return a.sum(axis=tuple(drop)), "".join(c for c in labels if c in keep)


@register("einsum")
def einsum(values, equation):
    """Two-operand einsum as one batched matmul (size-1 batch axes broadcast, as MIL allows)."""
    a, b = (np.asarray(v) for v in values)
    parsed = _parse(str(equation))
    if parsed is None:
        return np.einsum(str(equation), a, b, optimize=True)
    la, lb, out = parsed
    a, la = _sum_private(a, la, lb + out)
    b, lb = _sum_private(b, lb, la + out)
    batch = [c for c in out if c in la and c in lb]
    free_a = [c for c in out if c in la and c not in lb]
    free_b = [c for c in out if c in lb and c not in la]
    contract = [c for c in la if c in lb and c not in out]
    size_a = dict(zip(la, a.shape, strict=True))
    size_b = dict(zip(lb, b.shape, strict=True))
    a = a.transpose([la.index(c) for c in batch + free_a + contract])
    b = b.transpose([lb.index(c) for c in batch + contract + free_b])
    n_free_a = math.prod(size_a[c] for c in free_a)
    n_free_b = math.prod(size_b[c] for c in free_b)
    n_contract = math.prod(size_a[c] for c in contract)
    a = a.reshape([size_a[c] for c in batch] + [n_free_a, n_contract])
    b = b.reshape([size_b[c] for c in batch] + [n_contract, n_free_b])
    product = np.matmul(a, b)
    batch_shape = list(product.shape[: len(batch)])
    product = product.reshape(
        batch_shape + [size_a[c] for c in free_a] + [size_b[c] for c in free_b]
    )
    order = batch + free_a + free_b
    return product.transpose([order.index(c) for c in out])
