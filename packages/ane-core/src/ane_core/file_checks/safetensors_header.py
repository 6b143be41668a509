"""Check a ``.safetensors`` file's header against the bytes that are really there.

Why: a safetensors file is trusted to be code-free, not to be whole. A copy cut short, a
Git LFS pointer or a header changed in transit should be named as such, in one line, before
any tensor is read or allocated, and a header's size claims (a shape of 2^31 elements) must
be measured against the file, not believed.

The format, from the safetensors README ("Format") and its reader
(huggingface/safetensors ``safetensors/src/tensor.rs``, ``SafeTensors::read_metadata`` and
``Metadata::validate``): 8 bytes ``N`` (u64, little-endian), then ``N`` bytes of UTF-8 JSON
``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`` (at
most ``MAX_HEADER_SIZE`` = 100,000,000 bytes), then the data buffer, which the offsets index
from its start and must cover exactly.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from ane_core.errors import AneError, WeightsError
from ane_core.file_checks.lfs import refuse_lfs_pointer

MAX_HEADER_SIZE = 100_000_000
"""The safetensors library refuses larger headers (``HeaderTooLarge``)."""

DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "C64": 64,
    "I64": 64, "U64": 64, "F64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip
"""Bits per element of every dtype name safetensors' ``Dtype`` enum knows."""


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as the header describes it (offsets into the data buffer)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def _invalid(path: Path, what: str, error: type[AneError]) -> AneError:
    return error(
        f"{path} is not a valid safetensors file ({what}).",
        "Copy or download it again; if it stays broken, re-save it with safetensors.",
    )


def _entry(path: Path, name: str, info: object, error: type[AneError]) -> TensorEntry:
    if not isinstance(info, dict):
        raise _invalid(path, f"tensor {name!r} has no description", error)
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in DTYPE_BITS:
        raise _invalid(path, f"tensor {name!r} has unknown dtype {str(dtype)[:20]!r}", error)
    if not (
        isinstance(shape, list)
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        and isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
        and offsets[0] <= offsets[1]
    ):
        raise _invalid(path, f"tensor {name!r} has a malformed shape or data_offsets", error)
    needed = math.prod(shape) * DTYPE_BITS[dtype]
    if needed != 8 * (offsets[1] - offsets[0]):
        raise _invalid(
            path,
            f"tensor {name!r} claims shape {tuple(shape)} of {dtype} in "
            f"{offsets[1] - offsets[0]:,} bytes",
            error,
        )
    return TensorEntry(name, dtype, tuple(shape), offsets[0], offsets[1])


def check_safetensors(
    path: str | Path, error: type[AneError] = WeightsError
) -> dict[str, TensorEntry]:
    """Every tensor the header of ``path`` describes, once each claim is checked against the
    file's length; a problem is one ``error`` naming the file (Git LFS pointers included)."""
    path = Path(path)
    refuse_lfs_pointer(path, error)
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise error(
                f"{path} is truncated ({size} bytes; a safetensors file starts with an 8-byte "
                "header length).",
                "Copy or download it again.",
            )
        (header_size,) = struct.unpack("<Q", head)
        if header_size > MAX_HEADER_SIZE:
            raise _invalid(path, f"its header claims {header_size:,} bytes", error)
        if 8 + header_size > size:
            raise error(
                f"{path} is truncated: its header alone claims {header_size:,} bytes but the "
                f"file has {size:,}.",
                "Copy or download it again.",
            )
        raw = handle.read(header_size)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _invalid(path, "its header is not JSON", error) from None
    if not isinstance(header, dict):
        raise _invalid(path, "its header is not a JSON object", error)
    entries = {
        name: _entry(path, name, info, error)
        for name, info in header.items()
        if name != "__metadata__"
    }
    data_size = size - 8 - header_size
    data_end = max((e.end for e in entries.values()), default=0)
    if data_end > data_size:
        raise error(
            f"{path} is truncated: its header describes {8 + header_size + data_end:,} bytes "
            f"but the file has {size:,}.",
            "Copy or download it again.",
        )
    return entries
