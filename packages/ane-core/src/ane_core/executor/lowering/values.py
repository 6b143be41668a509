"""Values between numpy and torch, and the per-op rounding rule in torch.

The rule is :func:`ane_core.executor.dtypes.settle`'s: a value is held in its compute dtype
(float32 for float16 and float32 tensors) and every op output is rounded to the dtype the
program declares for it. torch's float32 -> float16 conversion rounds to nearest, ties to even,
with float16 subnormals, overflow to infinity and NaN kept (c10's ``fp16_ieee_from_fp32_value``
and the F16C ``vcvtps2ph`` with round-to-nearest on x86), so one ``.half().float()`` gives the
bits that the numpy executor's ``round_to_float16`` gives. A test checks it over every float16
boundary.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ane_core.executor.dtypes import compute_dtype

_TORCH_DTYPES = {
    np.dtype(np.float16): torch.float16,
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
    np.dtype(np.int8): torch.int8,
    np.dtype(np.uint8): torch.uint8,
    np.dtype(np.int16): torch.int16,
    np.dtype(np.uint16): torch.uint16,
    np.dtype(np.int32): torch.int32,
    np.dtype(np.int64): torch.int64,
    np.dtype(np.bool_): torch.bool,
}


def torch_dtype(dtype: np.dtype) -> torch.dtype:
    """The torch dtype of a numpy dtype the executor holds."""
    return _TORCH_DTYPES[np.dtype(dtype)]


def to_torch(value: Any) -> Any:
    """A numpy array or scalar as a tensor (sharing memory where it can); other values (strings,
    ``None``, tuples of names) unchanged."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in "biuf":
        array = np.asarray(value)
        if not array.flags.writeable or not array.flags.c_contiguous:
            array = np.array(array, copy=True, order="C")
        return torch.from_numpy(array)
    if isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
        return value
    if isinstance(value, np.str_):
        return str(value)
    return value


def to_numpy(value: Any) -> Any:
    """A tensor as a numpy array (no copy); other values unchanged."""
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    if isinstance(value, tuple):
        return tuple(to_numpy(v) for v in value)
    return value


def settle(value: Any, declared: np.dtype, *, in_place: bool = False) -> torch.Tensor:
    """Round an op's output to its declared dtype and hold it in the compute dtype.

    ``in_place``: the value is the op's own fresh float32 result, so it is rounded where it
    lies (no second float32 tensor of its size is allocated: attention maps are tens of MB).
    """
    tensor = value if isinstance(value, torch.Tensor) else to_torch(np.asarray(value))
    if declared == np.float16 and tensor.is_floating_point():
        if in_place and tensor.dtype == torch.float32:
            return tensor.copy_(tensor.to(torch.float16))
        return tensor.to(torch.float32).to(torch.float16).to(torch.float32)
    wanted = torch_dtype(declared)
    if tensor.dtype != wanted:
        tensor = tensor.to(wanted)
    held = torch_dtype(compute_dtype(declared))
    return tensor if held == wanted else tensor.to(held)


def held_dtype(declared: np.dtype) -> torch.dtype:
    """The torch dtype a value of ``declared`` dtype is held in while the program runs."""
    return torch_dtype(compute_dtype(declared))
