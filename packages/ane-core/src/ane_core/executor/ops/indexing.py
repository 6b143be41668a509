"""Slicing and gathering (coremltools ``tensor_transformation.py``, ``scatter_gather.py``,
iOS18 ``slice_update``)."""

from __future__ import annotations

import numpy as np

from ane_core.executor.ops._util import axis_of
from ane_core.executor.registry import register


def index_slices(rank, begin, end, stride, begin_mask, end_mask, squeeze_mask):
    """numpy index for MIL's slice_by_index arguments (as ``solve_slice_by_index_slice``)."""
    begin = [int(b) for b in np.ravel(begin)]
    end = [int(e) for e in np.ravel(end)]
    stride = [1] * rank if stride is None else [int(s) for s in np.ravel(stride)]
    begin_mask = [False] * rank if begin_mask is None else list(np.ravel(begin_mask))
    end_mask = [False] * rank if end_mask is None else list(np.ravel(end_mask))
    squeeze_mask = [False] * rank if squeeze_mask is None else list(np.ravel(squeeze_mask))
    index: list[int | slice] = []
    for i in range(rank):
        if squeeze_mask[i]:
            index.append(begin[i])
            continue
        start = None if begin_mask[i] else begin[i]
        stop = None if end_mask[i] else end[i]
        index.append(slice(start, stop, stride[i]))
    return tuple(index)


@register("slice_by_index", moves_data=True)
def slice_by_index(x, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None):
    """``x[begin:end:stride, ...]`` with MIL's masks; a squeezed axis is indexed, not sliced."""
    x = np.asarray(x)
    return x[index_slices(x.ndim, begin, end, stride, begin_mask, end_mask, squeeze_mask)]


@register("slice_by_size", moves_data=True)
def slice_by_size(x, begin, size):
    """``size[i]`` elements from ``begin[i]``; ``-1`` takes the rest of the axis."""
    x = np.asarray(x)
    index = []
    for axis, (b, s) in enumerate(zip(np.ravel(begin), np.ravel(size), strict=True)):
        b = axis_of(b, x.shape[axis]) if int(b) < 0 else int(b)
        index.append(slice(b, None if int(s) == -1 else b + int(s)))
    return x[tuple(index)]


@register("slice_update", moves_data=True)
def slice_update(
    x, update, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None
):
    """A copy of ``x`` whose slice (as in ``slice_by_index``) is replaced by ``update``."""
    out = np.array(x, copy=True)
    index = index_slices(out.ndim, begin, end, stride, begin_mask, end_mask, squeeze_mask)
    out[index] = np.reshape(update, out[index].shape)
    return out


@register("gather", moves_data=True)
def gather(x, indices, axis=0, batch_dims=0, validate_indices=False):
    """``np.take`` along ``axis``; leading ``batch_dims`` axes of x and indices pair up."""
    x, indices = np.asarray(x), np.asarray(indices).astype(np.int64)
    axis = axis_of(axis, x.ndim)
    batch_dims = int(batch_dims)
    if bool(validate_indices) and (
        np.any(indices >= x.shape[axis]) or np.any(indices < -x.shape[axis])
    ):
        raise IndexError(f"gather: index out of range for axis of size {x.shape[axis]}")
    if batch_dims == 0:
        return np.take(x, indices, axis=axis)
    results = [
        np.take(x[b], indices[b], axis=axis - batch_dims) for b in np.ndindex(*x.shape[:batch_dims])
    ]
    stacked = np.stack(results)
    return stacked.reshape(x.shape[:batch_dims] + stacked.shape[1:])


@register("gather_along_axis", moves_data=True)
def gather_along_axis(x, indices, axis=0, validate_indices=False):
    x = np.asarray(x)
    indices = np.asarray(indices).astype(np.int64)
    return np.take_along_axis(x, indices, axis=axis_of(axis, x.ndim))


@register("gather_nd", moves_data=True)
def gather_nd(x, indices, batch_dims=0, validate_indices=False):
    """Index ``x`` by the last axis of ``indices`` (``batch_dims`` 0 only)."""
    if int(batch_dims) != 0:
        raise ValueError("gather_nd: batch_dims > 0 is not implemented")
    x, indices = np.asarray(x), np.asarray(indices).astype(np.int64)
    return x[tuple(np.moveaxis(indices, -1, 0))]
