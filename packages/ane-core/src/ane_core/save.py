"""Atomic save of ``.mlpackage`` directories.

Why: a half-written package is worse than none (Xcode fails on it with an obscure error).
The package is written into a hidden temporary directory beside the target, on the same
file system, and renamed into place only once complete. Any failure, Ctrl-C included,
removes the temporary directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ane_core.errors import OutputError

TEMP_PREFIX = ".ane-tmp-"


def check_target(target: Path, *, force: bool) -> None:
    """Fail fast (before any slow work) if ``target`` cannot be written."""
    parent = target.parent
    if target.exists() and not force:
        raise OutputError(f"{target} already exists.", "Pass --force to overwrite it.")
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"output directory {parent} is a file.", "Pick a directory with -o.")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(
            f"output directory {parent} is not writable.", "Pick another directory with -o."
        )


def atomic_write_dir(target: Path, write: Callable[[Path], None], *, force: bool) -> Path:
    """Call ``write(tmp_path)`` to create a directory, then move it to ``target`` atomically.

    With ``force``, an existing target is replaced; the old copy is removed only after the
    new one is in place, so a failure never leaves neither.
    """
    target = Path(target)
    check_target(target, force=force)
    target.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=target.parent))
    try:
        staged = workdir / target.name
        write(staged)
        if not staged.exists():
            raise OutputError(f"writing {target.name} produced nothing.")
        if target.exists():
            if not force:
                raise OutputError(
                    f"{target} appeared while exporting (another export?).",
                    "Pass --force to overwrite it.",
                )
            old = workdir / (target.name + ".old")
            os.replace(target, old)
        os.replace(staged, target)
    except OSError as error:
        raise OutputError(
            f"could not write {target}: {error.strerror or error}.",
            "Free disk space or pick another directory with -o.",
        ) from error
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return target


def save_mlmodel(mlmodel, target: Path, *, force: bool) -> Path:
    """Save an ``MLModel`` as ``target`` (an ``.mlpackage`` path) atomically."""
    return atomic_write_dir(target, lambda staged: mlmodel.save(str(staged)), force=force)
