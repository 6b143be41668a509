"""Layout, slicing, gathering and state ops in torch (twins of
:mod:`ane_core.executor.ops.shape`, ``indexing`` and ``state``). They only move values, so they
are bit-equal to the numpy ops; most return views, as numpy's do.
"""

from __future__ import annotations

import numpy as np
import torch

from ane_core.executor.lowering.registry import axes_of, axis_of, flag, ints, register
from ane_core.executor.lowering.values import to_torch
from ane_core.executor.ops.indexing import gather as numpy_gather
from ane_core.executor.ops.indexing import index_slices
from ane_core.executor.ops.shape import pad as numpy_pad


@register("reshape")
def reshape(x, shape):
    target = ints(shape)
    if len(target) == x.ndim:
        target = [x.shape[i] if s == 0 else s for i, s in enumerate(target)]
    return x.reshape(target)


@register("transpose")
def transpose(x, perm):
    return x.permute(ints(perm))


@register("expand_dims")
def expand_dims(x, axes):
    rank = x.ndim + len(ints(axes))
    shape = list(x.shape)
    for axis in sorted(a + rank if a < 0 else a for a in ints(axes)):
        shape.insert(axis, 1)
    return x.reshape(shape)


@register("squeeze")
def squeeze(x, axes=None):
    if axes is None:
        return x.squeeze()
    return x.squeeze(tuple(axes_of(axes, x.ndim)))


@register("concat")
def concat(values, axis, interleave=False):
    axis = axis_of(axis, values[0].ndim)
    if not flag(interleave):
        return torch.cat(values, dim=axis)
    stacked = torch.stack(values, dim=axis + 1)
    shape = list(values[0].shape)
    shape[axis] *= len(values)
    return stacked.reshape(shape)


@register("split")
def split(x, axis, num_splits=None, split_sizes=None):
    axis = axis_of(axis, x.ndim)
    if split_sizes is not None:
        sizes = ints(split_sizes)
    else:
        n = ints(num_splits)[0]
        part = -(-x.shape[axis] // n)
        sizes = [min(part, x.shape[axis] - i * part) for i in range(n)]
    return tuple(torch.split(x, sizes, dim=axis))


@register("stack")
def stack(values, axis):
    return torch.stack(values, dim=ints(axis)[0])


@register("tile")
def tile(x, reps):
    return x.repeat(ints(reps))


@register("reverse")
def reverse(x, axes=None):
    return torch.flip(x, axes_of(axes, x.ndim))


def _index(x, begin, end, stride, begin_mask, end_mask, squeeze_mask):
    as_numpy = [None if v is None else np.asarray(v) for v in (stride, begin_mask, end_mask)]
    squeeze = None if squeeze_mask is None else np.asarray(squeeze_mask)
    return index_slices(x.ndim, np.asarray(begin), np.asarray(end), *as_numpy, squeeze)


def _positive(index) -> bool:
    return all(not isinstance(i, slice) or i.step is None or i.step > 0 for i in index)


@register("slice_by_index")
def slice_by_index(x, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None):
    index = _index(x, begin, end, stride, begin_mask, end_mask, squeeze_mask)
    if _positive(index):
        return x[index]
    return to_torch(np.ascontiguousarray(x.numpy()[index]))  # torch has no negative steps


@register("slice_by_size")
def slice_by_size(x, begin, size):
    index = []
    for axis, (b, s) in enumerate(zip(ints(begin), ints(size), strict=True)):
        b = b + x.shape[axis] if b < 0 else b
        index.append(slice(b, None if s == -1 else b + s))
    return x[tuple(index)]


@register("slice_update")
def slice_update(
    x, update, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None
):
    out = x.clone()
    index = _index(out, begin, end, stride, begin_mask, end_mask, squeeze_mask)
    view = out.numpy()  # numpy assigns through negative steps too; same memory
    view[index] = np.reshape(update.numpy(), view[index].shape)
    return out


@register("gather")
def gather(x, indices, axis=0, batch_dims=0, validate_indices=False):
    axis = axis_of(axis, x.ndim)
    indices = indices.to(torch.int64)
    size = x.shape[axis]
    if flag(validate_indices) and bool(((indices >= size) | (indices < -size)).any()):
        raise IndexError(f"gather: index out of range for axis of size {size}")
    indices = torch.where(indices < 0, indices + size, indices)
    if ints(batch_dims)[0] != 0:  # rare (no export of ours has one): the numpy op
        return to_torch(
            np.ascontiguousarray(
                numpy_gather(x.numpy(), indices.numpy(), axis, ints(batch_dims)[0])
            )
        )
    flat = torch.index_select(x, axis, indices.reshape(-1))
    return flat.reshape(tuple(x.shape[:axis]) + tuple(indices.shape) + tuple(x.shape[axis + 1 :]))


@register("pad")
def pad(x, pad, mode="constant", constant_val=0.0):
    """Constant padding in torch; reflect and replicate by the numpy op (a mel front end's
    one call per window)."""
    values = ints(pad)
    if str(mode) != "constant":
        return to_torch(numpy_pad(x.numpy(), values, str(mode), constant_val))
    widths = []
    for before, after in reversed(list(zip(values[0::2], values[1::2], strict=True))):
        widths += [before, after]
    value = float(constant_val.item() if isinstance(constant_val, torch.Tensor) else constant_val)
    return torch.nn.functional.pad(x, widths, mode="constant", value=value)


@register("read_state")
def read_state(input):  # noqa: A002  (MIL's input name)
    """A float32 (or integer) snapshot of the caller's numpy state buffer."""
    return to_torch(np.array(input, copy=True))


@register("coreml_update_state")
def coreml_update_state(state, value):
    np.copyto(state, value.numpy(), casting="unsafe")
    return value
