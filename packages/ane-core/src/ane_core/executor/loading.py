"""Read a saved ``.mlpackage`` back into a coremltools MIL program, weights included.

Why coremltools' own reader (``milproto.load.load``): it is what coremltools uses to
re-optimise saved models, so the program we evaluate is exactly the one in the package, with
each weight read from the package's weight blob; nothing is re-converted from PyTorch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ane_core._coremltools import coremltools
from ane_core.errors import UsageError
from ane_core.mil import load_spec

WEIGHTS_SUBDIR = Path("Data") / "com.apple.CoreML" / "weights"


def load_mil_program(path: str | Path) -> Any:
    """The ``coremltools`` MIL ``Program`` stored in the ML-program package at ``path``."""
    path = Path(path)
    if not (path / "Manifest.json").is_file():
        raise UsageError(
            f"{path} is not a saved .mlpackage (no Manifest.json).",
            "Pass the directory `ane export` wrote.",
        )
    spec = load_spec(path)
    if spec.WhichOneof("Type") != "mlProgram":
        raise UsageError(
            f"{path} holds a {spec.WhichOneof('Type')} model, not an ML program.",
            "The reference executor runs ML programs only (convert_to='mlprogram').",
        )
    coremltools()  # quiet import before the submodule
    from coremltools.converters.mil.frontend.milproto.load import load

    return load(
        spec,
        specification_version=spec.specificationVersion,
        file_weights_dir=str(path / WEIGHTS_SUBDIR),
    )
