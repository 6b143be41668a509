"""Softmax, normalisations, reductions and attention in torch (twins of
:mod:`ane_core.executor.ops.reduction`, ``normalization``, ``attention`` and the ``softmax``
of ``activation``). Sums and statistics accumulate in float32, as in the numpy ops; their
order is torch's, so all are registered as accumulating.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ane_core.executor.lowering.registry import axes_of, axis_of, flag, register


@register("softmax", accumulates=True)
def softmax(x, axis=-1):
    return torch.softmax(x, dim=axis_of(axis, x.ndim))


def _scalar(value):
    return value.item() if isinstance(value, torch.Tensor) else value


def _norm_shape(x: torch.Tensor, axes: list[int]) -> list[int]:
    return [x.shape[i] if i in axes else 1 for i in range(x.ndim)]


@register("layer_norm", accumulates=True)
def layer_norm(x, axes=None, gamma=None, beta=None, epsilon=1e-5):
    """torch's fused layer norm over the normalised axes moved last (the ANE layout
    normalises axis 1 of ``(B, C, 1, S)``); axes that are not consecutive take the numpy op's
    formula: mean, centred, mean of squares, divide by the root."""
    axes = axes_of(axes, x.ndim)
    if axes == list(range(axes[0], axes[0] + len(axes))):
        rest = [i for i in range(x.ndim) if i not in axes]
        moved = x.permute(rest + axes)
        shape = tuple(x.shape[i] for i in axes)
        weight = None if gamma is None else gamma.reshape(shape)
        bias = None if beta is None else beta.reshape(shape)
        y = F.layer_norm(moved, shape, weight, bias, eps=float(_scalar(epsilon)))
        return y.permute([(rest + axes).index(i) for i in range(x.ndim)])
    mean = x.mean(dim=axes, keepdim=True)
    centred = x - mean
    variance = centred.square().mean(dim=axes, keepdim=True)
    y = centred / torch.sqrt(variance + epsilon)
    if gamma is not None:
        y = y * gamma.reshape(_norm_shape(x, axes))
    if beta is not None:
        y = y + beta.reshape(_norm_shape(x, axes))
    return y


def _channel_shape(ndim: int) -> tuple[int, ...]:
    return (1, -1) + (1,) * (ndim - 2)


def _channel_affine(y: torch.Tensor, gamma, beta) -> torch.Tensor:
    """``y * gamma + beta`` per channel (axis 1), each optional: batch and instance norm."""
    shape = _channel_shape(y.ndim)
    if gamma is not None:
        y = y * gamma.reshape(shape)
    if beta is not None:
        y = y + beta.reshape(shape)
    return y


@register("batch_norm", accumulates=True)
def batch_norm(x, mean, variance, gamma=None, beta=None, epsilon=1e-5):
    shape = _channel_shape(x.ndim)
    y = (x - mean.reshape(shape)) / torch.sqrt(variance.reshape(shape) + epsilon)
    return _channel_affine(y, gamma, beta)


@register("instance_norm", accumulates=True)
def instance_norm(x, gamma=None, beta=None, epsilon=1e-5):
    y = layer_norm(x, axes=list(range(2, x.ndim)), epsilon=epsilon)
    return _channel_affine(y, gamma, beta)


@register("l2_norm", accumulates=True)
def l2_norm(x, axes=None, epsilon=1e-6):
    axes = list(range(1, x.ndim)) if axes is None else axes_of(axes, x.ndim)
    total = x.square().sum(dim=axes, keepdim=True)
    return x / torch.sqrt(torch.clamp(total, min=float(epsilon)))


_REDUCERS = {
    "reduce_sum": lambda x, axes: x.sum(dim=axes, keepdim=True),
    "reduce_mean": lambda x, axes: x.mean(dim=axes, keepdim=True),
    "reduce_max": lambda x, axes: x.amax(dim=axes, keepdim=True),
    "reduce_min": lambda x, axes: x.amin(dim=axes, keepdim=True),
    "reduce_l1_norm": lambda x, axes: x.abs().sum(dim=axes, keepdim=True),
    "reduce_l2_norm": lambda x, axes: x.square().sum(dim=axes, keepdim=True).sqrt(),
    "reduce_sum_square": lambda x, axes: x.square().sum(dim=axes, keepdim=True),
    "reduce_log_sum": lambda x, axes: x.sum(dim=axes, keepdim=True).log(),
    "reduce_log_sum_exp": lambda x, axes: torch.logsumexp(x, dim=axes, keepdim=True),
}


def _reduction(function):
    def evaluate(x, axes=None, keep_dims=False):
        axes = axes_of(axes, x.ndim)
        y = function(x, axes)
        return y if flag(keep_dims) else y.squeeze(tuple(axes))

    return evaluate


for _name, _function in _REDUCERS.items():
    register(_name, accumulates=True)(_reduction(_function))


def _arg_reduction(function):
    def evaluate(x, axis=-1, keep_dims=False, output_dtype="int32"):
        return function(x, dim=axis_of(axis, x.ndim), keepdim=flag(keep_dims))

    return evaluate


register("reduce_argmax")(_arg_reduction(torch.argmax))
register("reduce_argmin")(_arg_reduction(torch.argmin))


@register("scaled_dot_product_attention", accumulates=True)
def scaled_dot_product_attention(query, key, value, attn_mask=None):
    scores = torch.matmul(query, key.transpose(-1, -2)) / torch.sqrt(
        torch.tensor(float(query.shape[-1]), dtype=torch.float32)
    )
    if attn_mask is not None:
        mask = attn_mask
        if mask.dtype == torch.bool:
            mask = torch.where(mask, 0.0, -math.inf).to(torch.float32)
        scores = scores + mask
    return torch.matmul(torch.softmax(scores, dim=-1), value)
