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

The float32 -> float16 rounding runs through torch's conversion, which is bit-identical to
numpy's ``astype`` (IEEE round-to-nearest-even, subnormals and overflow to inf included) but
vectorised: numpy converts fp16 subnormals (softmax tails are full of them) in a slow
software path, which made an fp16 Whisper encoder four times slower.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

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


def round_to_float16(array: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest float16 (ties to even), held in float32."""
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return tensor.to(torch.float16).to(torch.float32).numpy()


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
