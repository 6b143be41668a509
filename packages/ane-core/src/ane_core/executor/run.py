"""Pick a backend and run a package: :func:`load_program`, :func:`run_package`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ane_core.errors import UsageError
from ane_core.executor.coreml import CoreMLProgram, parse_compute_units
from ane_core.executor.interpreter import Program
from ane_core.executor.lowering.program import LoweredProgram

BACKENDS = ("mil", "coreml")
"""``mil``: the reference executor (any OS); ``coreml``: Core ML itself (macOS)."""

ENGINES: dict[str, type[Program]] = {"torch": LoweredProgram, "numpy": Program}
"""How the ``mil`` backend evaluates a program. ``torch``: each op lowered to PyTorch (the
fast path, the default); ``numpy``: the numpy interpreter, the oracle the lowering is tested
against. Both round every op output the same way (see :mod:`ane_core.executor.dtypes`)."""

ENGINE_VARIABLE = "ANE_MIL_ENGINE"
"""Environment variable that picks the default engine (``numpy`` to run the oracle)."""


def check_engine(engine: str | None) -> str:
    """The engine to use: ``engine``, else ``$ANE_MIL_ENGINE``, else ``torch``."""
    chosen = engine or os.environ.get(ENGINE_VARIABLE) or "torch"
    if chosen not in ENGINES:
        source = f"{ENGINE_VARIABLE}={chosen}" if engine is None else repr(chosen)
        raise UsageError(
            f"unknown reference-executor engine {source}.", f"Use one of: {', '.join(ENGINES)}."
        )
    return chosen


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}.", f"Use one of: {', '.join(BACKENDS)}.")
    return backend


def load_program(
    path: str | Path,
    *,
    backend: str = "mil",
    compute_units: str = "all",
    engine: str | None = None,
) -> Program | CoreMLProgram:
    """Load a package once for repeated calls with the chosen backend (and, for ``mil``, the
    engine: see :data:`ENGINES`)."""
    check_backend(backend)
    parse_compute_units(compute_units)
    if backend == "coreml":
        return CoreMLProgram.load(path, compute_units=compute_units)
    return ENGINES[check_engine(engine)].load(path)


def run_package(
    path: str | Path,
    inputs: Mapping[str, Any],
    *,
    backend: str = "mil",
    compute_units: str = "all",
    engine: str | None = None,
) -> dict[str, np.ndarray]:
    """Load the package at ``path`` and run it once on ``inputs`` (name -> array)."""
    return load_program(path, backend=backend, compute_units=compute_units, engine=engine)(inputs)
