"""Read the MIL program of a saved ``.mlpackage`` without running it.

Why: Core ML cannot run off macOS, but the program it would run is in the package. Counting
its ops (``cast`` above all) is how we prove, on any OS, what an export contains.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ane_core._coremltools import coremltools


def dtype_bits(dtype: str) -> int:
    """Bits per element of a MIL data type name (``FLOAT16`` -> 16, ``UINT4`` -> 4).

    ``BOOL`` is stored in a byte; strings and unknown types count as 0 (they hold no tensor
    data worth measuring). Shared by the inspector (tensor sizes) and the package check (the
    bytes a weight blob must hold).
    """
    if dtype == "BOOL":
        return 8
    match = re.match(r"B?(?:FLOAT|U?INT)(\d+)", dtype)
    return int(match.group(1)) if match else 0


def load_spec(path: str | Path) -> Any:
    """The protobuf ``Model`` spec of a saved ``.mlpackage`` (weights stay on disk)."""
    return coremltools().utils.load_spec(str(path))


def _operations(block: Any) -> Iterator[Any]:
    for op in block.operations:
        yield op
        for inner in op.blocks:
            yield from _operations(inner)


def iter_operations(spec: Any) -> Iterator[Any]:
    """Every MIL operation of every function, nested blocks included."""
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            yield from _operations(block)


def op_counts(model: str | Path | Any) -> Counter[str]:
    """Count of each MIL op type in a package path, an ``MLModel`` or a spec."""
    if isinstance(model, (str, Path)):
        spec = load_spec(model)
    elif hasattr(model, "get_spec"):
        spec = model.get_spec()
    else:
        spec = model
    return Counter(op.type for op in iter_operations(spec))
