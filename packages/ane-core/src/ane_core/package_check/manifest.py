"""Read a package's ``Manifest.json`` and check that every item it lists is there.

Why our own reader: coremltools' ``ModelPackage`` (C++) either throws an opaque
``RuntimeError`` or, for a missing item, nothing at all until something reads it. A package
copied from elsewhere needs an answer naming what is missing.

The layout, from coremltools' ``modelpackage/src/ModelPackage.cpp``: a JSON object with
``fileFormatVersion``, ``itemInfoEntries`` (identifier -> ``{path, name, author,
description}``, each ``path`` relative to the package's ``Data`` folder) and
``rootModelIdentifier``, the identifier of the model spec item.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ane_core.errors import PackageError
from ane_core.file_checks import refuse_lfs_pointer

MANIFEST = "Manifest.json"
DATA_DIR = "Data"
_MANIFEST_LIMIT = 16 << 20
"""A manifest lists a few items; anything this large is not one (and is not read)."""

COPY_AGAIN = "Copy or download the whole package again, or export it again."


@dataclass(frozen=True)
class ManifestItem:
    """One entry of ``itemInfoEntries``."""

    identifier: str
    name: str
    author: str
    path: Path
    """Where the item is, relative to the package root (``Data/...``)."""


@dataclass(frozen=True)
class Manifest:
    """The items of a package and which one is the model spec."""

    items: tuple[ManifestItem, ...]
    root: ManifestItem


def _damaged(manifest: Path, what: str) -> PackageError:
    return PackageError(f"{manifest} is damaged ({what}).", COPY_AGAIN)


def _item_path(manifest: Path, identifier: str, entry: object) -> ManifestItem:
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        raise _damaged(manifest, f"item {identifier[:40]!r} has no path")
    relative = PurePosixPath(entry["path"])
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise _damaged(manifest, f"item path {entry['path'][:80]!r} points outside the package")
    return ManifestItem(
        identifier=identifier,
        name=str(entry.get("name", "")),
        author=str(entry.get("author", "")),
        path=Path(DATA_DIR, *relative.parts),
    )


def read_manifest(package: Path) -> Manifest:
    """The manifest of ``package`` once every item it lists exists."""
    manifest = package / MANIFEST
    if not manifest.is_file():
        raise PackageError(
            f"{package} is not an .mlpackage directory: it has no {MANIFEST}.",
            "Pass the folder `ane export` or coremltools wrote, copied whole.",
        )
    refuse_lfs_pointer(manifest, PackageError)
    if manifest.stat().st_size > _MANIFEST_LIMIT:
        raise _damaged(manifest, f"{manifest.stat().st_size:,} bytes, too large for a manifest")
    try:
        data = json.loads(manifest.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _damaged(manifest, "not JSON") from None
    entries = data.get("itemInfoEntries") if isinstance(data, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise _damaged(manifest, "no itemInfoEntries")
    items = tuple(_item_path(manifest, str(key), entry) for key, entry in entries.items())
    root_id = data.get("rootModelIdentifier")
    roots = [item for item in items if item.identifier == root_id]
    if not roots:
        raise _damaged(manifest, "its rootModelIdentifier names no item")
    for item in items:
        if not (package / item.path).exists():
            raise PackageError(
                f"{package} lacks {item.path}, which its {MANIFEST} lists.", COPY_AGAIN
            )
    return Manifest(items=items, root=roots[0])
