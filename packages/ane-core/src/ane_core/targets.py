"""Deployment targets and precisions, validated before any slow work starts."""

from __future__ import annotations

import enum
import re
from typing import Any

from ane_core._coremltools import coremltools
from ane_core.errors import UsageError

DEFAULT_TARGET = "macOS13"

# The oldest OS release of each family that runs ML programs with float16 inputs/outputs
# (coremltools: fp16 I/O needs iOS16/macOS13), and the one that adds stateful models.
_FP16_IO_MIN = {"macOS": 13, "iOS": 16, "tvOS": 16, "watchOS": 9}
_ML_PROGRAM_MIN = {"macOS": 12, "iOS": 15, "tvOS": 15, "watchOS": 8}
STATE_MIN = {"macOS": 15, "iOS": 18, "tvOS": 18, "watchOS": 11}


class Precision(str, enum.Enum):
    """Compute and I/O precision of an exported ML program."""

    FP16 = "fp16"
    FP32 = "fp32"

    @property
    def torch_dtype(self):
        import torch

        return torch.float16 if self is Precision.FP16 else torch.float32

    @property
    def numpy_dtype(self):
        import numpy as np

        return np.float16 if self is Precision.FP16 else np.float32


def parse_precision(value: str) -> Precision:
    try:
        return Precision(value.lower())
    except ValueError:
        raise UsageError(f"unknown precision {value!r}.", "Use fp16 or fp32.") from None


def known_targets() -> list[str]:
    """Target names coremltools knows, e.g. macOS13, iOS16 (newest last within a family)."""
    return [name for name in coremltools().target.__members__ if _split(name) is not None]


def _split(name: str) -> tuple[str, int] | None:
    match = re.fullmatch(r"(macOS|iOS|tvOS|watchOS)(\d+)", name)
    return (match.group(1), int(match.group(2))) if match else None


def parse_target(
    value: str, *, precision: Precision = Precision.FP16, stateful: bool = False
) -> tuple[str, Any]:
    """Canonical target name and the ``coremltools.target`` member, or a one-line error.

    Accepts any capitalisation (``macos13``, ``IOS17``).
    """
    by_lower = {name.lower(): name for name in known_targets()}
    name = by_lower.get(value.strip().lower())
    if name is None:
        raise UsageError(
            f"unknown deployment target {value!r}.",
            f"Use one of: {', '.join(known_targets())}.",
        )
    family, version = _split(name)  # type: ignore[misc]
    if version < _ML_PROGRAM_MIN[family]:
        raise UsageError(
            f"deployment target {name} is too old for ML programs.",
            f"Use {family}{_ML_PROGRAM_MIN[family]} or newer.",
        )
    if precision is Precision.FP16 and version < _FP16_IO_MIN[family]:
        raise UsageError(
            f"deployment target {name} cannot take float16 inputs, which FP16 exports use to "
            "avoid cast ops.",
            f"Use {family}{_FP16_IO_MIN[family]} or newer, or --precision fp32.",
        )
    if stateful and version < STATE_MIN[family]:
        raise UsageError(
            f"deployment target {name} has no Core ML state, which --stateful needs.",
            f"Use {family}{STATE_MIN[family]} or newer, or drop --stateful.",
        )
    return name, coremltools().target[name]
