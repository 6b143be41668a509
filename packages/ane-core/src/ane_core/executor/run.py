"""Pick a backend and run a package: :func:`load_program`, :func:`run_package`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ane_core.errors import UsageError
from ane_core.executor.coreml import CoreMLProgram, parse_compute_units
from ane_core.executor.interpreter import Program

BACKENDS = ("mil", "coreml")
"""``mil``: the numpy reference executor (any OS); ``coreml``: Core ML itself (macOS)."""


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}.", f"Use one of: {', '.join(BACKENDS)}.")
    return backend


def load_program(
    path: str | Path, *, backend: str = "mil", compute_units: str = "all"
) -> Program | CoreMLProgram:
    """Load a package once for repeated calls with the chosen backend."""
    check_backend(backend)
    parse_compute_units(compute_units)
    if backend == "coreml":
        return CoreMLProgram.load(path, compute_units=compute_units)
    return Program.load(path)


def run_package(
    path: str | Path,
    inputs: Mapping[str, Any],
    *,
    backend: str = "mil",
    compute_units: str = "all",
) -> dict[str, np.ndarray]:
    """Load the package at ``path`` and run it once on ``inputs`` (name -> array)."""
    return load_program(path, backend=backend, compute_units=compute_units)(inputs)
