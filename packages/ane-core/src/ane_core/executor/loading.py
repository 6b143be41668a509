"""Read a saved ``.mlpackage`` back into a coremltools MIL program, weights included.

Why coremltools' own reader (``milproto.load.load``): it is what coremltools uses to
re-optimise saved models, so the program we evaluate is exactly the one in the package, with
each weight read from the package's weight blob; nothing is re-converted from PyTorch. That
reader trusts the package, so :func:`ane_core.package_check.check_package` checks it first
(manifest, spec, every weight blob's header against its file): a damaged package is one
:class:`~ane_core.errors.PackageError` naming the file, never an error from inside numpy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ane_core._coremltools import coremltools
from ane_core.errors import PackageError, UsageError, brief
from ane_core.package_check import check_package


def load_mil_program(path: str | Path) -> Any:
    """The ``coremltools`` MIL ``Program`` stored in the ML-program package at ``path``."""
    checked = check_package(path)
    spec = checked.spec
    if spec.WhichOneof("Type") != "mlProgram":
        raise UsageError(
            f"{path} holds a {spec.WhichOneof('Type')} model, not an ML program.",
            "The reference executor runs ML programs only (convert_to='mlprogram').",
        )
    coremltools()  # quiet import before the submodule
    from coremltools.converters.mil.frontend.milproto.load import load

    try:
        return load(
            spec,
            specification_version=spec.specificationVersion,
            file_weights_dir=str(checked.weights_dir),
        )
    except Exception as error:  # a spec that parses but is no valid program: from elsewhere
        raise PackageError(
            f"{checked.model_path} holds a program coremltools cannot read "
            f"({type(error).__name__}: {brief(error, 160)}).",
            "Copy or download the whole package again, or export it again.",
        ) from error
