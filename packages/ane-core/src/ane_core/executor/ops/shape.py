"""Layout and construction ops (coremltools ``tensor_transformation.py``,
``tensor_operation.py``): reshape, transpose, concat, split, pad, fill, ..."""

from __future__ import annotations

import numpy as np

from ane_core.executor.ops._util import axes_of, axis_of
from ane_core.executor.registry import register


@register("reshape", moves_data=True)
def reshape(x, shape):
    """numpy reshape; a ``0`` keeps the input's size on that axis when ranks match (MIL rule)."""
    x = np.asarray(x)
    target = [int(s) for s in np.ravel(shape)]
    if len(target) == x.ndim:
        target = [x.shape[i] if s == 0 else s for i, s in enumerate(target)]
    return x.reshape(target)


@register("transpose", moves_data=True)
def transpose(x, perm):
    return np.transpose(x, [int(p) for p in np.ravel(perm)])


@register("expand_dims", moves_data=True)
def expand_dims(x, axes):
    """Insert size-1 axes; negative axes count from the end of the output, as in numpy."""
    return np.expand_dims(x, tuple(int(a) for a in np.ravel(axes)))


@register("squeeze", moves_data=True)
def squeeze(x, axes=None):
    x = np.asarray(x)
    return np.squeeze(x) if axes is None else np.squeeze(x, axis=axes_of(axes, x.ndim))


@register("concat", moves_data=True)
def concat(values, axis, interleave=False):
    """Concatenate along ``axis``; ``interleave`` alternates equal-sized slices instead."""
    arrays = [np.asarray(v) for v in values]
    axis = axis_of(axis, arrays[0].ndim)
    if not bool(interleave):
        return np.concatenate(arrays, axis=axis)
    stacked = np.stack(arrays, axis=axis + 1)
    shape = list(arrays[0].shape)
    shape[axis] *= len(arrays)
    return stacked.reshape(shape)


@register("split", moves_data=True)
def split(x, axis, num_splits=None, split_sizes=None):
    """Split along ``axis`` into ``split_sizes`` or ``num_splits`` near-equal parts."""
    x = np.asarray(x)
    axis = axis_of(axis, x.ndim)
    if split_sizes is not None:
        sizes = [int(s) for s in np.ravel(split_sizes)]
    else:
        n = int(num_splits)
        part = -(-x.shape[axis] // n)
        sizes = [min(part, x.shape[axis] - i * part) for i in range(n)]
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


@register("stack", moves_data=True)
def stack(values, axis):
    return np.stack([np.asarray(v) for v in values], axis=int(axis))


@register("tile", moves_data=True)
def tile(x, reps):
    return np.tile(x, [int(r) for r in np.ravel(reps)])


@register("reverse", moves_data=True)
def reverse(x, axes=None):
    x = np.asarray(x)
    return np.flip(x, axis=axes_of(axes, x.ndim))


@register("pad")
def pad(x, pad, mode="constant", constant_val=0.0):
    """Pad the last ``len(pad) / 2`` axes; modes constant, reflect, replicate."""
    x = np.asarray(x)
    values = [int(p) for p in np.ravel(pad)]
    widths = [(0, 0)] * (x.ndim - len(values) // 2) + list(
        zip(values[0::2], values[1::2], strict=True)
    )
    mode = str(mode)
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=constant_val)
    if mode in ("reflect", "replicate"):
        return np.pad(x, widths, mode="reflect" if mode == "reflect" else "edge")
    raise ValueError(f"pad: unknown mode {mode!r}")


@register("shape")
def shape(x):
    return np.asarray(np.shape(x), dtype=np.int32)


@register("fill")
def fill(shape, value=0.0):
    return np.full([int(s) for s in np.ravel(shape)], value)


@register("fill_like")
def fill_like(ref_tensor, value=0.0):
    return np.full(np.shape(ref_tensor), value)


@register("range_1d")
def range_1d(end, start, step):
    return np.arange(start, end, step)


@register("band_part")
def band_part(x, lower=-1, upper=-1):
    """Keep a band of the last two axes: ``lower`` sub- and ``upper`` super-diagonals (-1: all)."""
    x = np.asarray(x)
    rows, cols = x.shape[-2:]
    offset = np.arange(rows)[:, None] - np.arange(cols)[None, :]
    keep = np.ones((rows, cols), dtype=bool)
    if int(lower) >= 0:
        keep &= offset <= int(lower)
    if int(upper) >= 0:
        keep &= -offset <= int(upper)
    return np.where(keep, x, 0)


@register("cumsum")
def cumsum(x, axis=0, exclusive=False, reverse=False):
    x = np.asarray(x)
    axis = axis_of(axis, x.ndim)
    if bool(reverse):
        x = np.flip(x, axis=axis)
    y = np.cumsum(x, axis=axis)
    if bool(exclusive):
        y = y - x
    return np.flip(y, axis=axis) if bool(reverse) else y
