"""Compile ``.mlpackage`` to ``.mlmodelc`` with Xcode's ``coremlcompiler``, or say how.

Why: apps load compiled models. whisper.cpp only looks for ``ggml-<model>-encoder.mlmodelc``
and WhisperKit prefers ``<Name>.mlmodelc`` over the package, and only Apple's compiler
(``xcrun coremlcompiler compile PACKAGE OUTDIR``, Xcode command line tools, macOS only)
makes one. On macOS with the tools an export compiles its packages itself; anywhere else it
prints the command to run on a Mac.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ane_core.errors import OutputError

COMPILED_SUFFIX = ".mlmodelc"


def compiled_name(package: str | Path) -> str:
    """``Foo.mlpackage`` -> ``Foo.mlmodelc``: what ``coremlcompiler`` names its output."""
    return Path(package).stem + COMPILED_SUFFIX


def compile_command(package: str | Path, output_dir: str | Path) -> list[str]:
    """The command that compiles ``package`` into ``output_dir/<stem>.mlmodelc``."""
    return ["xcrun", "coremlcompiler", "compile", str(package), str(output_dir)]


def shell_line(command: Sequence[str]) -> str:
    """``command`` as one line to paste into a shell."""
    return " ".join(shlex.quote(part) for part in command)


def can_compile() -> bool:
    """True on macOS when ``xcrun`` finds ``coremlcompiler`` (Xcode command line tools)."""
    if sys.platform != "darwin" or shutil.which("xcrun") is None:
        return False
    found = subprocess.run(
        ["xcrun", "--find", "coremlcompiler"], capture_output=True, text=True, check=False
    )
    return found.returncode == 0


def compile_package(package: Path, output_dir: Path) -> Path:
    """Compile ``package`` into ``output_dir``; returns the ``.mlmodelc``, or a one-line
    :class:`OutputError` with the compiler's last line."""
    command = compile_command(package, output_dir)
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    compiled = Path(output_dir) / compiled_name(package)
    if run.returncode != 0 or not compiled.is_dir():
        last = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
        raise OutputError(
            f"coremlcompiler could not compile {Path(package).name}: {last[0]}",
            "Check the Xcode command line tools (xcode-select --install).",
        )
    return compiled
