"""The same call interface as :class:`ane_core.executor.Program`, run by Core ML itself.

Why: on a Mac every parity check should also run the real runtime (CPU, GPU or Neural
Engine), with the reference executor's numbers beside it. Off macOS Core ML cannot predict,
so this says so in one line instead of failing deep inside coremltools.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ane_core._coremltools import coremltools
from ane_core.errors import UsageError
from ane_core.executor.errors import CoreMLUnavailableError
from ane_core.package_check import check_package

COMPUTE_UNITS = {
    "all": "ALL",
    "cpu_only": "CPU_ONLY",
    "cpu_and_gpu": "CPU_AND_GPU",
    "cpu_and_ne": "CPU_AND_NE",
}
"""``--compute-units`` values and the ``coremltools.ComputeUnit`` member each selects."""


def parse_compute_units(value: str) -> str:
    """Validate a compute-units name (before anything slow runs); returns it lower-cased."""
    key = value.strip().lower()
    if key not in COMPUTE_UNITS:
        raise UsageError(
            f"unknown compute units {value!r}.", f"Use one of: {', '.join(COMPUTE_UNITS)}."
        )
    return key


def require_macos() -> None:
    if sys.platform != "darwin":
        raise CoreMLUnavailableError(
            f"running a package with Core ML needs macOS (this is {sys.platform}).",
            "Use the reference executor (backend 'mil') here.",
        )


class CoreMLProgram:
    """A saved package loaded by Core ML with the chosen compute units."""

    def __init__(self, path: str | Path, *, compute_units: str = "all") -> None:
        units = parse_compute_units(compute_units)
        require_macos()
        check_package(path)  # a damaged package is one line, not an error from Core ML
        ct = coremltools()
        self.source = str(path)
        self._model = ct.models.MLModel(
            str(path), compute_units=getattr(ct.ComputeUnit, COMPUTE_UNITS[units])
        )
        description = self._model.get_spec().description
        self.inputs = [i.name for i in description.input]
        self.outputs = [o.name for o in description.output]
        self.states = [s.name for s in getattr(description, "state", [])]

    @classmethod
    def load(cls, path: str | Path, *, compute_units: str = "all") -> CoreMLProgram:
        return cls(path, compute_units=compute_units)

    def new_state(self) -> Any:
        """A fresh ``MLState`` (Core ML allocates and zero-fills it)."""
        return self._model.make_state()

    def write_state(self, state: Any, name: str, value: Any) -> None:
        """Fill the state variable ``name`` of ``state`` with ``value``, as an app does with
        ``MLState.withMultiArray(for:)`` (coremltools' ``MLState.write_state``)."""
        state.write_state(name, np.asarray(value, dtype=np.float16))

    def __call__(self, inputs: Mapping[str, Any], state: Any = None) -> dict[str, np.ndarray]:
        feed = {name: np.asarray(value) for name, value in inputs.items()}
        result = (
            self._model.predict(feed) if state is None else self._model.predict(feed, state=state)
        )
        return {name: np.asarray(value) for name, value in result.items()}
