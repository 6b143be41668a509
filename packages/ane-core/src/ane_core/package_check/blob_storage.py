"""The MIL weight file (``weight.bin``): its header and each blob's 64-byte metadata.

Why read it ourselves: coremltools' reader (``libmilstoragepython``) maps the file and
trusts every offset and size in it, so a file cut short or changed fails with a numpy
``ValueError`` or a C++ ``RuntimeError`` far from the cause. Reading the few bytes of each
header first lets every claim be measured against the file's real length.

The format, from coremltools' ``mlmodel/src/MILBlob/Blob/StorageFormat.hpp`` (written by
``BlobStorageWriter``, read by ``StorageReader.cpp``), all little-endian:

* ``storage_header`` (64 bytes): ``u32 count``, ``u32 version`` (2), reserved;
* per blob, a 64-byte-aligned ``blob_metadata``: ``u32 sentinel`` (``0xDEADBEEF``),
  ``u32 mil_dtype`` (``BlobDataType.hpp``), ``u64 sizeInBytes``, ``u64 offset`` (of the
  data, from the file start), ``u64 padding_size_in_bits``, reserved; then the data.

A program's ``BlobFileValue`` holds the offset of a blob's *metadata*, not of its data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

STORAGE_HEADER_BYTES = 64
METADATA_BYTES = 64
SUPPORTED_VERSION = 2
SENTINEL = 0xDEADBEEF

BLOB_DTYPES = {
    1: "FLOAT16", 2: "FLOAT32", 3: "UINT8", 4: "INT8", 5: "BFLOAT16", 6: "INT16",
    7: "UINT16", 8: "INT4", 9: "UINT1", 10: "UINT2", 11: "UINT4", 12: "UINT3", 13: "UINT6",
    14: "INT32", 15: "UINT32", 16: "FLOAT8E4M3FN", 17: "FLOAT8E5M2",
}  # fmt: skip
"""``BlobDataType`` code -> the MIL data type name (``MIL_pb2.DataType``) it stores
(``mlmodel/src/MILBlob/Blob/BlobDataType.hpp``)."""


@dataclass(frozen=True)
class StorageHeader:
    count: int
    version: int


@dataclass(frozen=True)
class BlobMetadata:
    """One blob's metadata, as read (not yet checked against anything)."""

    offset: int
    """Where this metadata lies in the file."""
    sentinel: int
    dtype_code: int
    size: int
    data_offset: int

    @property
    def dtype(self) -> str:
        return BLOB_DTYPES.get(self.dtype_code, f"unknown type {self.dtype_code}")

    @property
    def data_end(self) -> int:
        return self.data_offset + self.size


def read_storage_header(handle: BinaryIO) -> StorageHeader | None:
    """The file's header, or ``None`` if the file is shorter than one."""
    handle.seek(0)
    raw = handle.read(STORAGE_HEADER_BYTES)
    if len(raw) < STORAGE_HEADER_BYTES:
        return None
    count, version = struct.unpack_from("<II", raw)
    return StorageHeader(count, version)


def read_blob_metadata(handle: BinaryIO, offset: int) -> BlobMetadata | None:
    """The metadata at ``offset``, or ``None`` if the file ends before its 64 bytes do."""
    handle.seek(offset)
    raw = handle.read(METADATA_BYTES)
    if len(raw) < METADATA_BYTES:
        return None
    sentinel, dtype_code, size, data_offset = struct.unpack_from("<IIQQ", raw)
    return BlobMetadata(offset, sentinel, dtype_code, size, data_offset)
