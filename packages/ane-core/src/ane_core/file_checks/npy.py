"""Check a ``.npy`` file's header against the bytes that are really there.

Why: ``numpy.load`` believes the header's shape and reads (or fails to read) that many
bytes, raising a bare ``ValueError`` on a short file. Arrays shipped inside a package (see
:mod:`ane_core.package_items`) arrive with the package from elsewhere, so their size claim is
checked first and a bad file is one line naming it.

The format is numpy's own (NEP 1, ``numpy/lib/format.py``): magic ``\\x93NUMPY``, version,
header length, a Python-literal dict with ``descr``, ``fortran_order`` and ``shape``, then
the raw data; ``numpy.lib.format`` reads the header.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ane_core.errors import AneError
from ane_core.file_checks.lfs import refuse_lfs_pointer


def check_npy(path: str | Path, error: type[AneError]) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of the ``.npy`` file at ``path`` once its data is known to be all
    there; any problem (a Git LFS pointer too) is one ``error`` naming the file."""
    path = Path(path)
    refuse_lfs_pointer(path, error)
    fix = "Copy the package again, or export it again."
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version in ((2, 0), (3, 0)):
                shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
            else:
                raise ValueError(f"unknown .npy version {version}")
            data_start = handle.tell()
    except (OSError, ValueError, EOFError, SyntaxError) as problem:
        raise error(f"{path} is not a readable .npy array ({problem}).", fix) from None
    if dtype.hasobject:
        raise error(f"{path} holds Python objects, not numbers.", fix)
    needed = math.prod(shape) * dtype.itemsize
    have = os.path.getsize(path) - data_start
    if needed > have:
        raise error(
            f"{path} is truncated: its header describes {needed:,} bytes of data but the file "
            f"holds {have:,}.",
            fix,
        )
    return tuple(shape), dtype
