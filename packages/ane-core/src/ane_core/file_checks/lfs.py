"""Git LFS pointer files in place of the real file: recognise them and say so.

Why: the most common broken download of a model is a repository cloned without
``git lfs pull``. Every large file in it (``weight.bin``, ``model.bin``, ``.safetensors``,
``.pt``) is then a three-line text file, and a reader that does not look for that fails
with "not a model", "truncated" or worse. One check, used by every reader of a file from
elsewhere, turns it into one line that names the cause and the fix.

The format, from the Git LFS specification (git-lfs/git-lfs ``docs/spec.md``, "The
Pointer"): UTF-8 text, one ``{key} {value}\\n`` per line, ``version`` first, then ``oid
sha256:{hex}`` and ``size {bytes}`` among sorted keys. Which version URLs count and how long
a pointer may be follow git-lfs itself (``lfs/pointer.go`` ``v1Aliases``, and
``lfs/scanner.go`` ``blobSizeCutoff = 1024``: a larger file is never a pointer).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ane_core.errors import AneError, WeightsError

POINTER_SIZE_LIMIT = 1024
"""git-lfs reads a file as a pointer only when it is smaller than this many bytes."""

VERSION_URLS = (
    "https://git-lfs.github.com/spec/v1",  # public launch: what git-lfs writes
    "https://hawser.github.com/spec/v1",  # pre-release
    "http://git-media.io/v/2",  # alpha
)


@dataclass(frozen=True)
class LfsPointer:
    """What a pointer says about the file it stands for."""

    oid: str | None
    """``sha256:<hex>`` of the real file, when the pointer states it."""
    size: int | None
    """Size of the real file in bytes, when the pointer states it."""

    def describe(self) -> str:
        """``the real file is 16,421,120 bytes, sha256 3f2a...`` (what is known of it)."""
        parts = []
        if self.size is not None:
            parts.append(f"{self.size:,} bytes")
        if self.oid is not None:
            parts.append(self.oid.replace(":", " ", 1)[:19] + "...")
        return "the real file is " + ", ".join(parts) if parts else "its size is not stated"


def lfs_pointer_text(oid_hex: str, size: int) -> bytes:
    """A Git LFS v1 pointer for a file of ``size`` bytes with sha256 ``oid_hex``: what a
    repository cloned without ``git lfs pull`` holds in the file's place (tests write it)."""
    return f"version {VERSION_URLS[0]}\noid sha256:{oid_hex}\nsize {size}\n".encode()


def parse_lfs_pointer(data: bytes) -> LfsPointer | None:
    """The pointer that ``data`` (a whole file's bytes) is, or ``None`` if it is not one."""
    if len(data) >= POINTER_SIZE_LIMIT:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.splitlines()
    if not lines or lines[0].removeprefix("version ") not in VERSION_URLS:
        return None
    fields = dict(line.partition(" ")[::2] for line in lines[1:] if " " in line)
    size = fields.get("size", "")
    return LfsPointer(oid=fields.get("oid") or None, size=int(size) if size.isdigit() else None)


def read_lfs_pointer(path: str | Path) -> LfsPointer | None:
    """The pointer that the file at ``path`` is, or ``None`` (also for a missing file:
    the caller reports that in its own words)."""
    try:
        if os.path.getsize(path) >= POINTER_SIZE_LIMIT:
            return None
        with open(path, "rb") as handle:
            return parse_lfs_pointer(handle.read(POINTER_SIZE_LIMIT))
    except OSError:
        return None


def lfs_pointer_error(
    path: str | Path, pointer: LfsPointer, error: type[AneError] = WeightsError
) -> AneError:
    """The one-line error for a pointer found where ``path``'s real content should be."""
    return error(
        f"{path} is a Git LFS pointer, not the file itself ({pointer.describe()}): "
        "its repository was cloned or copied without `git lfs pull`.",
        "Run `git lfs pull` in that repository, or download the real file.",
    )


def refuse_lfs_pointer(path: str | Path, error: type[AneError] = WeightsError) -> None:
    """Raise ``error`` naming Git LFS if the file at ``path`` is a pointer; else nothing."""
    pointer = read_lfs_pointer(path)
    if pointer is not None:
        raise lfs_pointer_error(path, pointer, error)
