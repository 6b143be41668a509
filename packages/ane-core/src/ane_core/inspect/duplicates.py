"""Weights stored twice: the ``duplicate-weights`` rule, which reads the weight file.

Why: an app pays for every megabyte it ships, and a converter can store one tensor twice
without anyone noticing: a tied embedding kept once as a lookup table and once as the logits
weight in another layout (a reshape or a transpose folded into a new constant) cost Whisper
tiny's decoder 38 MiB, +70%. The program alone cannot tell (constants carry shapes, not
values), so this rule hashes the blobs themselves: two blobs with the same bytes are the same
tensor (a reshape keeps the bytes); a 2-D blob whose transpose has another's bytes is a
transpose of it; a blob whose bytes are whole rows of a bigger one (a slice along the first
axis, as a chunked projection's weights are of the table they were cut from) is a slice of
it. Several ops reading *one* blob is sharing, not waste, and is not reported.

Only blobs of at least :data:`MIN_DUPLICATE_BYTES` are compared (a few identical small
vectors, all-ones scales, say, are normal and cost nothing); whole blobs are hashed only
against blobs of equal size, and rows only against bigger blobs of the same row size, one
blob in memory at a time: a few reads of the weights at most.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ane_core.inspect.rules import Finding
from ane_core.package_check import CheckedPackage
from ane_core.package_check.blob_storage import read_blob_metadata
from ane_core.package_check.check import weight_file
from ane_core.package_check.references import BlobReference, blob_references

MIN_DUPLICATE_BYTES = 64 * 1024
"""Smallest blob compared: a duplicate below this is not worth a finding."""

_NUMPY = {"FLOAT16": np.float16, "FLOAT32": np.float32, "INT8": np.int8, "UINT8": np.uint8}


@dataclass(frozen=True)
class _Blob:
    ref: BlobReference
    path: Path
    data_offset: int
    size: int

    def read(self) -> bytes:
        with self.path.open("rb") as handle:
            handle.seek(self.data_offset)
            return handle.read(self.size)

    def describe(self) -> str:
        shape = ", ".join(map(str, self.ref.shape or ()))
        return f"{self.ref.op!r} ({self.ref.dtype}[{shape}])"

    def row_bytes(self) -> int | None:
        """Bytes of one slice along the first axis (``None`` for a sub-byte or unknown type)."""
        dtype, shape = _NUMPY.get(self.ref.dtype or ""), self.ref.shape
        if dtype is None or not shape or len(shape) < 2:
            return None
        return math.prod(shape[1:]) * np.dtype(dtype).itemsize

    def matrix(self) -> tuple[int, int] | None:
        """``(rows, columns)`` when the blob is a matrix padded with size-1 axes."""
        dims = [d for d in self.ref.shape or () if d != 1]
        return (dims[0], dims[1]) if len(dims) == 2 else None


def _blobs(checked: CheckedPackage) -> list[_Blob]:
    """Distinct blobs of at least :data:`MIN_DUPLICATE_BYTES` (one per file and offset)."""
    seen: dict[tuple[Path, int], _Blob] = {}
    for ref in blob_references(checked.spec):
        path = weight_file(checked, ref.file_name)
        if (path, ref.offset) in seen:
            continue
        with path.open("rb") as handle:
            meta = read_blob_metadata(handle, ref.offset)
        if meta is not None and meta.size >= MIN_DUPLICATE_BYTES:
            seen[path, ref.offset] = _Blob(ref, path, meta.data_offset, meta.size)
    return list(seen.values())


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _transposed(blob: _Blob, data: bytes) -> bytes | None:
    dtype, matrix = _NUMPY.get(blob.ref.dtype or ""), blob.matrix()
    if dtype is None or matrix is None or math.prod(matrix) * np.dtype(dtype).itemsize != len(data):
        return None
    return np.frombuffer(data, dtype=dtype).reshape(matrix).T.tobytes()


def _finding(blob: _Blob, relation: str, original: _Blob, function: str) -> Finding:
    return Finding(
        rule="duplicate-weights",
        detail=f"{blob.describe()} stores {relation} {original.describe()}: "
        f"{blob.size / 2**20:.1f} MiB stored twice",
        op_type="const",
        op_name=blob.ref.op,
        function=function,
        data={"bytes": blob.size, "same_as": original.ref.op},
    )


def _row_index(blob: _Blob, row: int) -> dict[bytes, list[int]]:
    """Digest of each row of ``blob`` -> the byte offsets where a row with it starts."""
    data, index = blob.read(), defaultdict(list)
    for start in range(0, len(data), row):
        index[_digest(data[start : start + row])].append(start)
    return index


def _row_slices(blobs: list[_Blob], reported: set[int], function: str) -> list[Finding]:
    """Blobs whose bytes are whole consecutive rows of a bigger blob with the same row size."""
    by_row: dict[tuple[str, int], list[_Blob]] = defaultdict(list)
    for blob in blobs:
        row = blob.row_bytes()
        if row and blob.size % row == 0 and id(blob) not in reported:
            by_row[blob.ref.dtype or "", row].append(blob)
    findings = []
    for (_, row), group in by_row.items():
        group.sort(key=lambda b: b.size, reverse=True)
        indexes: dict[int, dict[bytes, list[int]]] = {}
        held: dict[int, bytes] = {}
        for i, blob in enumerate(group):
            data = blob.read()
            for bigger in (b for b in group[:i] if b.size > blob.size):
                if id(bigger) not in indexes:
                    indexes[id(bigger)] = _row_index(bigger, row)
                starts = indexes[id(bigger)].get(_digest(data[:row]), [])
                if starts and id(bigger) not in held:  # one bigger blob in memory at a time
                    held.clear()
                    held[id(bigger)] = bigger.read()
                whole = held.get(id(bigger), b"")
                start = next((s for s in starts if whole[s : s + blob.size] == data), None)
                if start is not None:
                    rows = f"rows {start // row}..{(start + blob.size) // row - 1} of"
                    findings.append(_finding(blob, rows, bigger, function))
                    break
    return findings


def duplicate_weights(checked: CheckedPackage, function: str = "main") -> list[Finding]:
    """One ``duplicate-weights`` finding per blob whose bytes another blob already stores
    (same bytes, the transpose of a matrix, or consecutive rows of a bigger blob)."""
    blobs = _blobs(checked)
    by_size: dict[int, list[_Blob]] = defaultdict(list)
    for blob in blobs:
        by_size[blob.size].append(blob)
    findings = []
    reported: set[int] = set()
    for group in (g for g in by_size.values() if len(g) > 1):
        first: dict[bytes, _Blob] = {}
        transposes: dict[bytes, _Blob] = {}
        for blob in group:
            data = blob.read()
            digest = _digest(data)
            original, relation = first.get(digest), "the same bytes as"
            if original is None:
                original, relation = transposes.get(digest), "the transpose of"
            if original is not None:
                findings.append(_finding(blob, relation, original, function))
                reported.add(id(blob))
                continue
            first[digest] = blob
            flipped = _transposed(blob, data)
            if flipped is not None:
                transposes.setdefault(_digest(flipped), blob)
    return findings + _row_slices(blobs, reported, function)
