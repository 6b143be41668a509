"""Check a saved ``.mlpackage`` before anything reads it: the one gate for every reader.

Why: packages arrive from elsewhere (a hub, a colleague, a CI artifact) damaged in known ways:
a Git LFS pointer instead of ``weight.bin``, a copy cut short, a zip extracted badly. Without
a check, ``ane inspect`` reports such a package as fine (it reads only the spec) and the
reference executor fails deep inside numpy. :func:`check_package` reads the manifest, parses
the spec and reads every weight blob's header the program refers to, so a damaged package is
one :class:`~ane_core.errors.PackageError` naming the file and what is wrong, for
``ane inspect``, the executor's loader, Core ML runs and package items alike. It reads only
headers (a few bytes per blob); :mod:`ane_core.package_check.digests` reads everything.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ane_core._coremltools import coremltools
from ane_core.errors import PackageError
from ane_core.file_checks import refuse_lfs_pointer
from ane_core.package_check.blob_storage import (
    METADATA_BYTES,
    SENTINEL,
    STORAGE_HEADER_BYTES,
    SUPPORTED_VERSION,
    read_blob_metadata,
    read_storage_header,
)
from ane_core.package_check.manifest import COPY_AGAIN, Manifest, read_manifest
from ane_core.package_check.references import BlobReference, blob_references

MODEL_PATH = "@model_path"
"""How a program names the folder of its model spec in a ``blobFileValue`` file name."""
WEIGHTS_DIR = "weights"
"""coremltools writes weight files to ``<model folder>/weights``; its loader reads them from
there by file name (``milproto/load.py``: ``fileName.split("/")[-1]``)."""
_SPEC_LIMIT = 1 << 30
"""A model spec holds ops, not weights; a larger ``model.mlmodel`` is not read into memory."""


@dataclass(frozen=True)
class WeightFile:
    """A weight file the program reads, checked."""

    path: Path
    size: int
    blobs: int
    """Distinct blobs the program reads from it."""


@dataclass
class CheckedPackage:
    """A package whose manifest, spec and weight headers are in order."""

    path: Path
    manifest: Manifest
    spec: Any
    """The protobuf ``Model`` spec (weights stay on disk)."""
    weight_files: list[WeightFile] = field(default_factory=list)

    @property
    def model_path(self) -> Path:
        return self.path / self.manifest.root.path

    @property
    def weights_dir(self) -> Path:
        return self.model_path.parent / WEIGHTS_DIR

    def to_dict(self) -> dict[str, Any]:
        return {
            "weight_files": [
                {"path": str(w.path.relative_to(self.path)), "bytes": w.size, "blobs": w.blobs}
                for w in self.weight_files
            ]
        }


def _exists_as_directory(path: Path) -> None:
    if not path.exists():
        raise PackageError(f"{path} does not exist.", "Pass the path of an .mlpackage directory.")
    if not path.is_dir():
        raise PackageError(
            f"{path} is not an .mlpackage directory (it is a file; a package is a folder).",
            "Pass the folder `ane export` or coremltools wrote; unzip it first if it came zipped.",
        )


def _parse_spec(model: Path) -> Any:
    coremltools()  # quiet import before the submodule
    from coremltools.proto import Model_pb2

    refuse_lfs_pointer(model, PackageError)
    size = model.stat().st_size
    if size > _SPEC_LIMIT:
        raise PackageError(f"{model} is {size:,} bytes, too large for a model spec.", COPY_AGAIN)
    spec = Model_pb2.Model()
    try:
        spec.ParseFromString(model.read_bytes())
    except Exception as error:  # protobuf's DecodeError, or RuntimeError from the upb backend
        raise PackageError(
            f"{model} is not a Core ML model spec ({type(error).__name__}).", COPY_AGAIN
        ) from None
    if spec.WhichOneof("Type") is None:
        raise PackageError(f"{model} is not a Core ML model spec (it holds no model).", COPY_AGAIN)
    if spec.WhichOneof("Type") == "mlProgram":
        for name, function in spec.mlProgram.functions.items():
            if function.opset not in function.block_specializations:
                raise PackageError(
                    f"{model} is damaged (function {name!r} has no body for its opset "
                    f"{function.opset!r}).",
                    COPY_AGAIN,
                )
    return spec


def weight_file(checked: CheckedPackage, file_name: str) -> Path:
    """The file a ``blobFileValue`` names, if it lies in the package's weights folder."""
    parts = PurePosixPath(file_name).parts
    if len(parts) != 3 or parts[0] != MODEL_PATH or parts[1] != WEIGHTS_DIR or parts[2] == "..":
        raise PackageError(
            f"{checked.model_path} reads weights from {file_name[:100]!r}, which is not a "
            f"file in its {WEIGHTS_DIR} folder.",
            COPY_AGAIN,
        )
    return checked.weights_dir / parts[2]


def _check_blob(path: Path, size: int, handle: Any, ref: BlobReference) -> None:
    where = f"the weight of {ref.op!r}"
    if ref.offset < STORAGE_HEADER_BYTES:
        raise PackageError(
            f"{path} is damaged: the program puts {where} at byte {ref.offset}, inside the "
            f"file's {STORAGE_HEADER_BYTES}-byte header.",
            COPY_AGAIN,
        )
    if ref.offset + METADATA_BYTES > size:
        raise PackageError(
            f"{path} is truncated: {where} has its header at byte {ref.offset:,} but the file "
            f"has {size:,} bytes.",
            COPY_AGAIN,
        )
    meta = read_blob_metadata(handle, ref.offset)
    if meta is None:  # the file shrank while we read it
        raise PackageError(f"{path} is truncated (it changed while being read).", COPY_AGAIN)
    if meta.sentinel != SENTINEL:
        raise PackageError(
            f"{path} is damaged: {where} at byte {ref.offset:,} has no blob header "
            f"(sentinel {meta.sentinel:#010x}, expected {SENTINEL:#010x}).",
            COPY_AGAIN,
        )
    if meta.data_offset < ref.offset + METADATA_BYTES or meta.data_end > size:
        raise PackageError(
            f"{path} is truncated: {where} lies at bytes {meta.data_offset:,}-{meta.data_end:,} "
            f"but the file has {size:,}.",
            COPY_AGAIN,
        )
    if ref.dtype is not None and meta.dtype != ref.dtype:
        raise PackageError(
            f"{path} is damaged: {where} at byte {ref.offset:,} is stored as {meta.dtype} but "
            f"the program reads {ref.dtype}.",
            COPY_AGAIN,
        )
    expected = ref.expected_bytes
    if expected is not None and meta.size != expected:
        raise PackageError(
            f"{path} is damaged: {where} at byte {ref.offset:,} holds {meta.size:,} bytes but "
            f"the program reads {expected:,}.",
            COPY_AGAIN,
        )


def _check_weight_file(path: Path, references: list[BlobReference]) -> WeightFile:
    if not path.is_file():
        raise PackageError(
            f"{path} is missing: the program reads {len(references)} weight(s) from it.",
            COPY_AGAIN,
        )
    refuse_lfs_pointer(path, PackageError)
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        header = read_storage_header(handle)
        if header is None:
            raise PackageError(
                f"{path} is truncated: {size} bytes, shorter than its {STORAGE_HEADER_BYTES}-byte "
                "header.",
                COPY_AGAIN,
            )
        if header.version != SUPPORTED_VERSION:
            raise PackageError(
                f"{path} is not a Core ML weight file (storage version {header.version}, "
                f"expected {SUPPORTED_VERSION}).",
                COPY_AGAIN,
            )
        for ref in sorted(references, key=lambda r: r.offset):
            _check_blob(path, size, handle, ref)
    return WeightFile(path, size, len({r.offset for r in references}))


def check_package(path: str | Path) -> CheckedPackage:
    """Check the package at ``path`` (manifest, spec, every referenced weight blob's header
    against its file's length) and return it with its parsed spec; a problem is one
    :class:`~ane_core.errors.PackageError` naming the file."""
    path = Path(path)
    _exists_as_directory(path)
    manifest = read_manifest(path)
    model = path / manifest.root.path
    if not model.is_file():
        raise PackageError(f"{model} is not a file (the package's model spec).", COPY_AGAIN)
    checked = CheckedPackage(path=path, manifest=manifest, spec=_parse_spec(model))
    by_file: dict[Path, list[BlobReference]] = defaultdict(list)
    for ref in blob_references(checked.spec):
        by_file[weight_file(checked, ref.file_name)].append(ref)
    checked.weight_files = [_check_weight_file(p, refs) for p, refs in sorted(by_file.items())]
    return checked
