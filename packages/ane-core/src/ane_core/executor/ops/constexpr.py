"""Compressed-weight ops (iOS16 ``constexpr_ops.py``, iOS17 ``quantization_ops.py``, iOS18
``compression.py``). Their inputs are all constants, so the interpreter evaluates them once,
when the program is loaded; decoding pays nothing per call."""

from __future__ import annotations

import numpy as np

from ane_core.executor.dtypes import dtype_from_name
from ane_core.executor.ops._util import axis_of
from ane_core.executor.registry import register


def _along(param, data: np.ndarray, axis) -> np.ndarray:
    """A scalar or per-``axis`` vector shaped to broadcast against ``data``."""
    param = np.asarray(param)
    if param.ndim == 0 or param.ndim == data.ndim:
        return param
    shape = [1] * data.ndim
    shape[axis_of(axis, data.ndim)] = -1
    return param.reshape(shape)


def _dequantize(data, scale, zero_point, axis) -> np.ndarray:
    scale = np.asarray(scale)
    values = np.asarray(data).astype(np.float32)
    if zero_point is not None:
        values = values - _along(zero_point, values, axis).astype(np.float32)
    return (values * _along(scale, values, axis)).astype(scale.dtype)


@register("constexpr_affine_dequantize")
def constexpr_affine_dequantize(quantized_data, zero_point, scale, axis):
    """``scale * (quantized_data - zero_point)``, scale/zero point per ``axis`` or scalar."""
    return _dequantize(quantized_data, scale, zero_point, axis)


@register("dequantize")
def dequantize(input, scale, zero_point=None, axis=None):  # noqa: A002
    """iOS17 ``dequantize``: same arithmetic as ``constexpr_affine_dequantize``."""
    return _dequantize(input, scale, zero_point, 0 if axis is None else axis)


@register("constexpr_cast")
def constexpr_cast(source_val, output_dtype):
    return np.asarray(source_val).astype(dtype_from_name(str(output_dtype)))


def _unpack_bits(packed, nbits: int, count: int) -> np.ndarray:
    """Little-endian packed ``nbits`` unsigned integers (iOS16 LUT indices)."""
    bits = np.unpackbits(np.asarray(packed).astype(np.uint8).ravel(), bitorder="little")
    bits = bits[: count * nbits].reshape(count, nbits).astype(np.int64)
    return bits @ (1 << np.arange(nbits, dtype=np.int64))


def _block_gather(indices: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``lut[block(i), indices[i]]`` where ``lut`` is ``(*blocks, palettes, vector)`` and each
    block covers ``indices.shape[a] // blocks[a]`` consecutive elements on axis ``a``."""
    rank = indices.ndim
    blocks = lut.shape[:rank]
    coordinates = np.ix_(
        *[np.arange(n) // (n // b) for n, b in zip(indices.shape, blocks, strict=True)]
    )
    block_ids = np.ravel_multi_index(coordinates, blocks)
    flat = lut.reshape(-1, lut.shape[-2], lut.shape[-1])
    return flat[block_ids, indices.astype(np.int64)]  # (*indices.shape, vector)


@register("constexpr_lut_to_dense")
def constexpr_lut_to_dense(lut, indices, shape=None, vector_axis=None):
    """Palettized weights. iOS16: ``lut`` is a flat palette and ``indices`` packed bits of
    ``shape``. iOS18: ``lut`` is ``(*blocks, palettes, vector)`` and ``indices`` unpacked."""
    lut, indices = np.asarray(lut), np.asarray(indices)
    if shape is not None:
        shape = [int(s) for s in np.ravel(shape)]
        nbits = int(np.log2(lut.size))
        return lut[_unpack_bits(indices, nbits, int(np.prod(shape)))].reshape(shape)
    vector = lut.shape[-1]
    if vector == 1:
        return _block_gather(indices, lut)[..., 0]
    axis = axis_of(vector_axis, indices.ndim)
    moved = np.moveaxis(indices, axis, -1)
    gathered = _block_gather(moved, np.moveaxis(lut, axis, indices.ndim - 1))
    dense = gathered.reshape(*moved.shape[:-1], moved.shape[-1] * vector)
    return np.moveaxis(dense, -1, axis)


@register("constexpr_sparse_to_dense")
def constexpr_sparse_to_dense(nonzero_data, mask, shape=None):
    """Sparse weights: ``nonzero_data`` scattered where ``mask`` is set (iOS16: packed bits)."""
    nonzero_data = np.asarray(nonzero_data)
    if shape is not None:
        shape = [int(s) for s in np.ravel(shape)]
        flags = np.unpackbits(np.asarray(mask).astype(np.uint8), bitorder="little")
        dense = np.zeros(int(np.prod(shape)), dtype=nonzero_data.dtype)
        dense[np.flatnonzero(flags[: dense.size])] = nonzero_data
        return dense.reshape(shape)
    mask = np.asarray(mask)
    dense = np.zeros(mask.shape, dtype=nonzero_data.dtype)
    dense[mask != 0] = nonzero_data
    return dense


@register("constexpr_blockwise_shift_scale")
def constexpr_blockwise_shift_scale(data, scale, offset=None):
    """``scale * (data - offset)`` with scale/offset repeated over blocks of ``data``."""
    data, scale = np.asarray(data), np.asarray(scale)
    values = data.astype(np.float32)
    repeats = [d // s for d, s in zip(data.shape, scale.shape, strict=True)]

    def expand(param: np.ndarray) -> np.ndarray:
        for axis, count in enumerate(repeats):
            if count > 1:
                param = np.repeat(param, count, axis=axis)
        return param

    if offset is not None:
        values = values - expand(np.asarray(offset)).astype(np.float32)
    return (values * expand(scale)).astype(scale.dtype)
