"""Atomic save of ``.mlpackage`` directories.

Why: a half-written package is worse than none (Xcode fails on it with an obscure error).
Everything an export writes, coremltools' own temporary packages included, goes into a
hidden staging directory beside the target, on the same file system; the finished package
is renamed into place at the end. Any failure, Ctrl-C included, removes the staging
directory, and two exports racing for one target never mix their files.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ane_core.errors import OutputError

TEMP_PREFIX = ".ane-tmp-"


def check_target(target: Path, *, force: bool) -> None:
    """Fail fast (before any slow work) if ``target`` cannot be written."""
    if target.exists() and not force:
        raise OutputError(f"{target} already exists.", "Pass --force to overwrite it.")
    check_writable(target.parent)


def check_writable(directory: Path) -> None:
    """Fail fast if files cannot be written into ``directory`` (created later if missing)."""
    parent = Path(directory)
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"output directory {parent} is a file.", "Pick a directory with -o.")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    # os.access says yes to root everywhere; only a real write tells (read-only mounts, ACLs).
    try:
        os.rmdir(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=probe))
    except OSError as error:
        raise OutputError(
            f"output directory {parent} is not writable ({error.strerror or error}).",
            "Pick another directory with -o.",
        ) from error


def _write_error(target: Path, error: OSError) -> OutputError:
    fix = (
        "Free disk space or pick another directory with -o."
        if error.errno in (errno.ENOSPC, errno.EDQUOT)
        else "Check the output directory or pick another one with -o."
    )
    return OutputError(f"could not write {target}: {error.strerror or error}.", fix)


class Staging:
    """A private directory beside ``target`` where a package is built before it is published."""

    def __init__(self, target: Path, force: bool) -> None:
        self.target = Path(target)
        self.force = force
        self.dir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=self.target.parent))
        self.path = self.dir / self.target.name
        """Where the package must be written before :meth:`publish`."""

    @contextlib.contextmanager
    def temporary_files(self) -> Iterator[None]:
        """Send library temp files (coremltools writes whole packages to ``tempfile``) here."""
        previous = tempfile.tempdir
        tempfile.tempdir = str(self.dir)
        try:
            yield
        finally:
            tempfile.tempdir = previous

    def publish(self) -> Path:
        """Rename the finished package onto the target (replacing it only with ``force``)."""
        return self._move(self.path, self.target)

    def publish_beside(self, name: str) -> Path:
        """Rename ``name``, written into the staging directory beside the package (a
        compiled ``.mlmodelc``, say), onto the target's directory, as :meth:`publish` does.

        Why: what one export makes should appear only when all of it exists; calling this
        for each extra output right before :meth:`publish` keeps the window between them to
        a few renames.
        """
        return self._move(self.dir / name, self.target.parent / name)

    def _move(self, source: Path, target: Path) -> Path:
        if not source.exists():
            raise OutputError(f"writing {target.name} produced nothing.")
        try:
            if target.exists():
                if not self.force:
                    raise OutputError(
                        f"{target} appeared while exporting (another export?).",
                        "Pass --force to overwrite it.",
                    )
                os.replace(target, self.dir / (target.name + ".old"))
            os.replace(source, target)
        except OSError as error:
            raise _write_error(target, error) from error
        return target


@contextlib.contextmanager
def staging(target: Path, *, force: bool) -> Iterator[Staging]:
    """Yield a :class:`Staging` for ``target``; its directory is removed whatever happens."""
    target = Path(target)
    check_target(target, force=force)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        stage = Staging(target, force)
    except OSError as error:
        raise _write_error(target, error) from error
    try:
        yield stage
    except OSError as error:
        raise _write_error(target, error) from error
    finally:
        shutil.rmtree(stage.dir, ignore_errors=True)


def atomic_write_dir(target: Path, write: Callable[[Path], None], *, force: bool) -> Path:
    """Call ``write(tmp_path)`` to create a directory, then move it to ``target`` atomically."""
    with staging(target, force=force) as stage:
        write(stage.path)
        return stage.publish()


def save_mlmodel(mlmodel, target: Path, *, force: bool) -> Path:
    """Save an ``MLModel`` as ``target`` (an ``.mlpackage`` path) atomically."""
    return atomic_write_dir(target, lambda staged: mlmodel.save(str(staged)), force=force)
