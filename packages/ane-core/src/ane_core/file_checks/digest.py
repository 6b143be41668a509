"""SHA-256 of weight files, streamed.

Why here: a weight source records which bytes it read (package metadata, the CLI's
``weights:`` line, cache keys) and ``ane inspect --verify`` checks a package's files; all of
them hash files that can be gigabytes, so one streamed reader serves them all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

_BLOCK = 8 << 20


def files_sha256(paths: Sequence[Path]) -> str:
    """SHA-256 of the files read back to back (one file: that file's own SHA-256), so a
    model split into shards has one digest that changes when any shard does."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            while chunk := handle.read(_BLOCK):
                digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of one file."""
    return files_sha256([path])
