"""``layer_norm``, ``batch_norm``, ``instance_norm``, ``l2_norm`` (coremltools
``normalization.py``). Statistics are computed in float32 (see
:mod:`ane_core.executor.dtypes`)."""

from __future__ import annotations

import numpy as np

from ane_core.executor.ops._util import axes_of
from ane_core.executor.registry import register


def _channel_shape(ndim: int) -> tuple[int, ...]:
    return (1, -1) + (1,) * (ndim - 2)


@register("layer_norm")
def layer_norm(x, axes=None, gamma=None, beta=None, epsilon=1e-5):
    """Normalise over ``axes``; ``gamma``/``beta`` have the shape of those axes."""
    x = np.asarray(x)
    axes = axes_of(axes, x.ndim)
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    variance = np.mean(np.square(centred), axis=axes, keepdims=True)
    y = centred / np.sqrt(variance + epsilon)
    norm_shape = [x.shape[i] if i in axes else 1 for i in range(x.ndim)]
    if gamma is not None:
        y = y * np.reshape(gamma, norm_shape)
    if beta is not None:
        y = y + np.reshape(beta, norm_shape)
    return y


@register("batch_norm")
def batch_norm(x, mean, variance, gamma=None, beta=None, epsilon=1e-5):
    """Inference batch norm over axis 1: ``(x - mean) / sqrt(variance + eps) * gamma + beta``."""
    x = np.asarray(x)
    shape = _channel_shape(x.ndim)
    y = (x - np.reshape(mean, shape)) / np.sqrt(np.reshape(variance, shape) + epsilon)
    if gamma is not None:
        y = y * np.reshape(gamma, shape)
    if beta is not None:
        y = y + np.reshape(beta, shape)
    return y


@register("instance_norm")
def instance_norm(x, gamma=None, beta=None, epsilon=1e-5):
    """Normalise each (sample, channel) over the spatial axes."""
    x = np.asarray(x)
    y = layer_norm(x, axes=tuple(range(2, x.ndim)), epsilon=epsilon)
    shape = _channel_shape(x.ndim)
    if gamma is not None:
        y = y * np.reshape(gamma, shape)
    if beta is not None:
        y = y + np.reshape(beta, shape)
    return y


@register("l2_norm")
def l2_norm(x, axes=None, epsilon=1e-6):
    """``x / sqrt(max(sum(x^2 over axes), epsilon))``; default axes: all but the batch axis."""
    x = np.asarray(x)
    axes = tuple(range(1, x.ndim)) if axes is None else axes_of(axes, x.ndim)
    return x / np.sqrt(np.maximum(np.sum(np.square(x), axis=axes, keepdims=True), epsilon))
