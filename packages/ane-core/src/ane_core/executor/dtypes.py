"""MIL types to numpy dtypes, and the rounding rule every op output goes through.

The rule (why the executor's FP16 error resembles the device's): values are *held* in a
compute dtype (float32 for fp16 and fp32 tensors, the declared dtype otherwise) and every op's
output is rounded to the dtype the program declares for it before the next op reads it. For an
fp16 program that is one IEEE-754 round-to-nearest-even to float16 (numpy ``astype``) per op
output, so FP16 error accumulates op by op as on the device. Inside an op (the sum of a
matmul, conv or einsum, the mean and variance of a norm, the exponentials of a softmax) the
arithmetic is float32. The ANE likewise accumulates products in higher than fp16 precision
and rounds what it writes back to fp16; for a single ``+ - * /`` the float32 result rounded
once to float16 is exactly the correctly rounded fp16 result (float32 carries more than the
2p+2 = 24 bits double rounding needs to be harmless).

The float32 -> float16 rounding is done on the float32 bit patterns (round the mantissa to
10 bits, ties to even; subnormals by an exact float32 add; overflow to inf; NaN kept), which
is bit-identical to numpy's ``astype(float16)`` but avoids its slow software path for fp16
subnormals (softmax tails are full of them), which made an fp16 encoder four times slower.
Ops that only move data (reshape, split, slice, ...) skip the rounding: their values were
already rounded by the op that produced them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ane_core._coremltools import coremltools

_BY_NAME = {
    "fp16": np.float16,
    "fp32": np.float32,
    "fp64": np.float64,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "int32": np.int32,
    "int64": np.int64,
    "bool": np.bool_,
}


def dtype_from_name(name: str) -> np.dtype:
    """A MIL dtype string (``fp16``, ``int32``, ...) as a numpy dtype."""
    try:
        return np.dtype(_BY_NAME[name])
    except KeyError:
        raise ValueError(f"unknown MIL dtype {name!r}") from None


def numpy_dtype(mil_type: Any) -> np.dtype:
    """The numpy dtype of a MIL builtin type (``types.fp16`` -> float16)."""
    types = coremltools().converters.mil.mil.types
    if types.is_tensor(mil_type) or types.is_state(mil_type):
        return numpy_dtype(_element_type(mil_type))
    return np.dtype(types.nptype_from_builtin(mil_type))


def _element_type(mil_type: Any) -> Any:
    types = coremltools().converters.mil.mil.types
    if types.is_state(mil_type):
        return _element_type(mil_type.wrapped_type())
    return mil_type.get_primitive()


def compute_dtype(declared: np.dtype) -> np.dtype:
    """The dtype a value is held in while the program runs: float32 for any float below it."""
    if declared.kind == "f" and declared.itemsize < 4:
        return np.dtype(np.float32)
    return declared


_MAX_HALF = np.float32(65504.0)
_SMALLEST_NORMAL_HALF = np.float32(2.0**-14)
_SUBNORMAL_SHIFT = np.float32(0.75)  # in [0.5, 1) float32 steps are 2**-24, fp16's subnormal step


def round_to_float16(array: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest float16 (ties to even), held in float32."""
    a = np.ascontiguousarray(array, dtype=np.float32)
    bits = a.view(np.uint32)
    lsb = (bits >> np.uint32(13)) & np.uint32(1)
    out = ((bits + (np.uint32(0x0FFF) + lsb)) & np.uint32(0xFFFFE000)).view(np.float32)
    small = np.abs(a) < _SMALLEST_NORMAL_HALF
    if small.any():
        out[small] = np.copysign((a[small] + _SUBNORMAL_SHIFT) - _SUBNORMAL_SHIFT, a[small])
    big = np.abs(out) > _MAX_HALF
    if big.any():
        out[big] = np.copysign(np.float32(np.inf), a[big])
    nan = np.isnan(a)
    if nan.any():
        out[nan] = a[nan]
    return out


def settle(value: Any, declared: np.dtype) -> np.ndarray:
    """Round an op's output to its declared dtype and hold it in the compute dtype."""
    array = np.asarray(value)
    if declared == np.float16 and array.dtype.kind == "f" and array.ndim > 0:
        return round_to_float16(array)
    if array.dtype != declared:
        array = array.astype(declared)
    held = compute_dtype(declared)
    if held != declared:
        array = array.astype(held)
    return array
