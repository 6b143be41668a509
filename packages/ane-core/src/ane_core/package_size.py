"""Size of an exported package on disk (what an app ships), for `ane parity` and `ane bench`."""

from __future__ import annotations

import os
from pathlib import Path


def bytes_on_disk(path: str | Path) -> int:
    """Sum of the sizes of every file under ``path`` (a ``.mlpackage`` is a directory)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(
        (Path(root) / name).stat().st_size for root, _, files in os.walk(path) for name in files
    )
