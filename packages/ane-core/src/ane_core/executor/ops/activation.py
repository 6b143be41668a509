"""Activations (coremltools ``activation.py``)."""

from __future__ import annotations

import numpy as np

from ane_core.executor.ops._util import erf, softmax
from ane_core.executor.registry import register


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@register("relu")
def relu(x):
    return np.maximum(x, 0)


@register("relu6")
def relu6(x):
    return np.minimum(np.maximum(x, 0), 6)


@register("sigmoid")
def sigmoid(x):
    return _sigmoid(np.asarray(x))


@register("silu")
def silu(x):
    x = np.asarray(x)
    return x * _sigmoid(x)


@register("softplus")
def softplus(x):
    return np.logaddexp(0, x)


@register("softsign")
def softsign(x):
    return x / (1 + np.abs(x))


@register("leaky_relu")
def leaky_relu(x, alpha=0.01):
    return np.where(x >= 0, x, alpha * np.asarray(x))


@register("elu")
def elu(x, alpha=1.0):
    x = np.asarray(x)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


@register("thresholded_relu")
def thresholded_relu(x, alpha=1.0):
    return np.where(x > alpha, x, 0)


@register("clamped_relu")
def clamped_relu(x, alpha=0.0, beta=6.0):
    x = np.asarray(x)
    return np.minimum(np.where(x >= 0, x, alpha * x), beta)


@register("linear_activation")
def linear_activation(x, alpha, beta=0.0):
    return alpha * np.asarray(x) + beta


@register("scaled_tanh")
def scaled_tanh(x, alpha=1.0, beta=1.0):
    return alpha * np.tanh(beta * np.asarray(x))


@register("sigmoid_hard")
def sigmoid_hard(x, alpha=0.2, beta=0.5):
    return np.clip(alpha * np.asarray(x) + beta, 0, 1)


@register("gelu")
def gelu(x, mode="EXACT"):
    """The three MIL GELU modes: erf (EXACT), tanh and sigmoid(1.702 x) approximations."""
    x = np.asarray(x)
    mode = str(mode)
    if mode == "EXACT":
        return 0.5 * x * (1.0 + erf(x / np.sqrt(np.float32(2.0))))
    if mode == "TANH_APPROXIMATION":
        inner = np.float32(np.sqrt(2.0 / np.pi)) * (x + np.float32(0.044715) * x**3)
        return 0.5 * x * (1.0 + np.tanh(inner))
    if mode == "SIGMOID_APPROXIMATION":
        return x * _sigmoid(np.float32(1.702) * x)
    raise ValueError(f"gelu: unknown mode {mode!r}")


register("softmax")(softmax)
