"""Toy packages for the package-check tests and fuzzing: one export, paths inside it."""

from __future__ import annotations

from pathlib import Path

from ane_core.compress import parse_compression
from ane_core.export import export_component
from ane_core.targets import Precision, parse_target
from ane_core.testing import ToyArchitecture

MODEL = Path("Data/com.apple.CoreML/model.mlmodel")
WEIGHTS = Path("Data/com.apple.CoreML/weights/weight.bin")
MANIFEST = Path("Manifest.json")


def export_toy(directory: Path, compression: str = "none", target: str = "macOS13") -> Path:
    """The toy ANE encoder, FP16, exported to ``directory``: a real package of ~100 KB."""
    arch = ToyArchitecture()
    return export_component(
        arch,
        size="small",
        component="encoder",
        variant="ane",
        weights=arch.load_weights("small", None),
        precision=Precision.FP16,
        target=parse_target(target, precision=Precision.FP16),
        output_dir=directory,
        compression=parse_compression(compression),
    ).path
