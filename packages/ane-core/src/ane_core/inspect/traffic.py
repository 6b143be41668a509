"""What one call of a model moves: bytes in, bytes out, state kept inside, per call unit.

Why: on the Neural Engine a call's time is often set by the bytes it moves, not by its
multiply-adds: a Whisper decoder that takes the cross-attention K/V as inputs moves
2 * n_layer * C * 1500 values per token (9.2 MB for tiny, ~246 MB for large in FP16), while
one that recomputes them moves only the encoder output but does 2 * n_layer * C^2 * 1500
more multiply-adds. Which design wins depends on the chip, so ``ane inspect`` reports the
counts side by side and guesses no milliseconds (those need Core ML on a Mac).

The figures come from the package's declared inputs, outputs and states (shapes and
dtypes) and from the cost estimate (:mod:`ane_core.inspect.cost`). ``call_unit`` names what
one call is (``token``, ``window``); an export records it in its metadata
(``ane.call_unit``, from ``ExportableModel.metadata["call_unit"]``), default ``call``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

CALL_UNIT_KEY = "ane.call_unit"
"""Metadata key naming what one call of the model is (e.g. ``token`` for a decoder)."""

_DTYPE_BYTES = {"float16": 2, "float32": 4, "double": 8, "int32": 4, "int8": 1, "uint8": 1}
"""Bytes per element of Core ML's multi-array data types (``ArrayDataType`` names)."""


def feature_bytes(feature: dict[str, Any]) -> int:
    """Bytes of one described input/output/state (:func:`describe_feature`); 0 if unknown."""
    shape = feature.get("shape")
    size = _DTYPE_BYTES.get(str(feature.get("dtype", "")).lower(), 0)
    return math.prod(shape) * size if shape else 0


@dataclass
class CallTraffic:
    """Per call: multiply-adds, weight bytes read, bytes passed in and out, state kept."""

    call_unit: str
    macs: int
    weight_bytes: int
    input_bytes: int
    output_bytes: int
    state_bytes: int
    """Bytes of Core ML state the model keeps between calls (read and written inside, not
    passed): counted apart from inputs and outputs."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "call_unit": self.call_unit,
            "macs_per_call": self.macs,
            "weight_bytes_per_call": self.weight_bytes,
            "input_bytes_per_call": self.input_bytes,
            "output_bytes_per_call": self.output_bytes,
            "state_bytes": self.state_bytes,
            "per_call": self.summary(),
        }

    def summary(self) -> str:
        """``per token: 0.03 GMAC, 54.1 MiB weights, 9.2 MiB in, 0.1 MiB out`` (+ state)."""
        state = f", {_mib(self.state_bytes)} state kept inside" if self.state_bytes else ""
        return (
            f"per {self.call_unit}: {self.macs / 1e9:.3g} GMAC, {_mib(self.weight_bytes)} "
            f"weights, {_mib(self.input_bytes)} in, {_mib(self.output_bytes)} out{state}"
        )


def _mib(count: int) -> str:
    return f"{count / 2**20:.1f} MiB" if count >= 2**20 / 10 else f"{count / 1024:.1f} KiB"


def call_traffic(
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    states: list[dict[str, Any]],
    *,
    matmul_flops: int,
    weight_bytes: int,
    metadata: dict[str, Any],
) -> CallTraffic:
    """The :class:`CallTraffic` of a package from its described features and cost."""
    unit = metadata.get("user_defined", {}).get(CALL_UNIT_KEY) or "call"
    return CallTraffic(
        call_unit=unit,
        macs=matmul_flops // 2,
        weight_bytes=weight_bytes,
        input_bytes=sum(feature_bytes(f) for f in inputs),
        output_bytes=sum(feature_bytes(f) for f in outputs),
        state_bytes=sum(feature_bytes(f) for f in states),
    )
