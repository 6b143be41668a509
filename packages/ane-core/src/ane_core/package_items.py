"""Extra files shipped inside an exported ``.mlpackage``, next to the Core ML model.

Why: some data a model needs belongs with it but not inside its program. A lookup table that
the app indexes before calling the model (a text encoder's token-embedding table, say) is a
copy of a few rows, which an app does for free but which a program can only do with a
``gather`` that the Neural Engine does not run. Shipping the table inside the package keeps
the export usable on its own. A ``.mlpackage`` is a model package: besides Core ML's own
items its ``Manifest.json`` can register further files, each with a name, an author and a
description (``coremltools.libmodelpackage.ModelPackage.addItem``). Core ML loads only the
root model. Whether Xcode copies extra items into the compiled ``.mlmodelc`` is not checked
here (no Mac), so an app should add the file to its bundle itself.

Items are written into the staged package before it is published (see
:mod:`ane_core.save`), so a failure leaves no package behind, and named in the model's
metadata (``ane.item.NAME.*``: path, shape, dtype, description) so an app finds them.
"""

from __future__ import annotations

import gc
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ane_core.datatypes import ITEM_AUTHOR, PackageItem  # re-exported: plugins import them here
from ane_core.errors import OutputError, PackageError
from ane_core.file_checks import check_npy, refuse_lfs_pointer
from ane_core.package_check.manifest import read_manifest

__all__ = [
    "ITEM_AUTHOR",
    "PackageItem",
    "add_items",
    "items_metadata",
    "load_item",
    "manifest_items",
]


def items_metadata(items: Sequence[PackageItem]) -> dict[str, str]:
    """Metadata for every item; a repeated name is an error (it would overwrite a file)."""
    names = [item.name for item in items]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"package item names repeat: {', '.join(repeated)}")
    meta: dict[str, str] = {}
    for item in items:
        meta.update(item.metadata())
    return meta


def add_items(package: Path, items: Sequence[PackageItem]) -> None:
    """Copy ``items`` into the saved ``package`` and register them in its ``Manifest.json``.

    Call it on the staged package, before publishing. Checks the manifest afterwards, since
    ``ModelPackage`` writes it only when the object is destroyed.
    """
    if not items:
        return
    from coremltools.libmodelpackage import ModelPackage

    package = Path(package)
    with tempfile.TemporaryDirectory(prefix=".items-", dir=package.parent) as scratch:
        model_package = ModelPackage(str(package))
        try:
            for item in items:
                source = Path(scratch) / item.name
                source.write_bytes(item.to_bytes())
                try:
                    model_package.addItem(str(source), item.name, ITEM_AUTHOR, item.description)
                except RuntimeError as error:
                    raise OutputError(
                        f"could not add {item.name} to {package.name}: {error}"
                    ) from None
        finally:
            del model_package  # writes Manifest.json
            gc.collect()
    registered = set(manifest_items(package))
    missing = [item.name for item in items if item.name not in registered]
    if missing:
        raise OutputError(f"{package.name}'s Manifest.json does not list {', '.join(missing)}.")


def manifest_items(package: Path) -> dict[str, str]:
    """``{name: path inside the package}`` of the items registered under :data:`ITEM_AUTHOR`.

    The manifest is read by :func:`ane_core.package_check.manifest.read_manifest`, so a
    package from elsewhere with a damaged manifest or a missing item is one
    :class:`~ane_core.errors.PackageError`.
    """
    manifest = read_manifest(Path(package))
    return {
        item.name: item.path.as_posix() for item in manifest.items if item.author == ITEM_AUTHOR
    }


def load_item(package: Path, name: str) -> np.ndarray | bytes:
    """The item ``name`` of a saved package: an array for ``.npy`` files, else bytes."""
    items = manifest_items(package)
    if name not in items:
        raise OutputError(
            f"{Path(package).name} holds no item {name!r}.",
            "Export it again with the option that ships the item (see its README).",
        )
    path = Path(package) / items[name]
    if name.endswith(".npy"):
        check_npy(path, PackageError)  # cut short, an LFS pointer, a header claiming too much
        return np.load(path, allow_pickle=False)
    refuse_lfs_pointer(path, PackageError)
    return path.read_bytes()
