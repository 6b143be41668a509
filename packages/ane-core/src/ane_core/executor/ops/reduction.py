"""``reduce_*`` ops (coremltools ``reduction.py``); sums accumulate in float32."""

from __future__ import annotations

import numpy as np

from ane_core.executor.ops._util import axes_of, axis_of
from ane_core.executor.registry import register

_REDUCERS = {
    "reduce_sum": lambda x, axes: np.sum(x, axis=axes, keepdims=True),
    "reduce_mean": lambda x, axes: np.mean(x, axis=axes, keepdims=True),
    "reduce_max": lambda x, axes: np.max(x, axis=axes, keepdims=True),
    "reduce_min": lambda x, axes: np.min(x, axis=axes, keepdims=True),
    "reduce_prod": lambda x, axes: np.prod(x, axis=axes, keepdims=True),
    "reduce_l1_norm": lambda x, axes: np.sum(np.abs(x), axis=axes, keepdims=True),
    "reduce_l2_norm": lambda x, axes: np.sqrt(np.sum(np.square(x), axis=axes, keepdims=True)),
    "reduce_sum_square": lambda x, axes: np.sum(np.square(x), axis=axes, keepdims=True),
    "reduce_log_sum": lambda x, axes: np.log(np.sum(x, axis=axes, keepdims=True)),
    "reduce_log_sum_exp": lambda x, axes: _log_sum_exp(x, axes),
}


def _log_sum_exp(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    peak = np.max(x, axis=axes, keepdims=True)
    return peak + np.log(np.sum(np.exp(x - peak), axis=axes, keepdims=True))


def _reduction(function):
    def evaluate(x, axes=None, keep_dims=False):
        x = np.asarray(x)
        axes = axes_of(axes, x.ndim)
        y = function(x, axes)
        return y if bool(keep_dims) else np.squeeze(y, axis=axes)

    return evaluate


for _name, _function in _REDUCERS.items():
    register(_name)(_reduction(_function))


def _arg_reduction(function):
    def evaluate(x, axis=-1, keep_dims=False, output_dtype="int32"):
        x = np.asarray(x)
        axis = axis_of(axis, x.ndim)
        y = function(x, axis=axis)
        return np.expand_dims(y, axis) if bool(keep_dims) else y

    return evaluate


register("reduce_argmax")(_arg_reduction(np.argmax))
register("reduce_argmin")(_arg_reduction(np.argmin))
