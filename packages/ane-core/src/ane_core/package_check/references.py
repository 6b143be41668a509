"""Every weight blob an ML program reads: which file, which offset, what type and shape.

Why: the program, not the weight file, says what must be in the weight file. A ``const``
op's ``val`` attribute, a ``constexpr_*`` op's attributes (iOS16 ops) and values bound to
its inputs (iOS18 ops) are ``Value`` messages; those stored outside the spec are
``blobFileValue {fileName, offset}`` (coremltools ``mlmodel/format/MIL.proto``) and carry
the tensor type the blob must hold.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ane_core.mil import dtype_bits, iter_operations


@dataclass(frozen=True)
class BlobReference:
    """One ``blobFileValue`` of the program."""

    op: str
    """The op that reads it (its name), for messages."""
    file_name: str
    """As written in the spec, e.g. ``@model_path/weights/weight.bin``."""
    offset: int
    """Offset of the blob's metadata in that file."""
    dtype: str | None
    """MIL data type name (``FLOAT16``...), ``None`` if the value is not a tensor."""
    shape: tuple[int, ...] | None
    """Static shape, ``None`` if any dimension is unknown."""

    @property
    def expected_bytes(self) -> int | None:
        """Bytes the blob must hold: elements times bits, rounded up to whole bytes (sub-byte
        types are packed, ``StorageReader.cpp``); ``None`` when type or shape is unknown."""
        if self.dtype is None or self.shape is None or dtype_bits(self.dtype) == 0:
            return None
        return (math.prod(self.shape) * dtype_bits(self.dtype) + 7) // 8


def _op_name(op: Any) -> str:
    name = op.attributes.get("name")
    if name is not None and name.immediateValue.tensor.strings.values:
        return str(name.immediateValue.tensor.strings.values[0])
    return op.outputs[0].name if op.outputs else op.type


def _tensor_type(value: Any) -> tuple[str | None, tuple[int, ...] | None]:
    from coremltools.proto import MIL_pb2

    if value.type.WhichOneof("type") != "tensorType":
        return None, None
    tensor = value.type.tensorType
    known = tensor.dataType in MIL_pb2.DataType.values()
    dtype = MIL_pb2.DataType.Name(tensor.dataType) if known else None
    dims = [
        d.constant.size if d.WhichOneof("dimension") == "constant" else None
        for d in tensor.dimensions
    ]
    if tensor.rank < 0 or any(d is None for d in dims):
        return dtype, None
    return dtype, tuple(dims)  # type: ignore[arg-type]


def _stored_values(op: Any) -> Iterator[Any]:
    yield from op.attributes.values()
    for binding in op.inputs.values():
        for argument in binding.arguments:
            if argument.WhichOneof("binding") == "value":
                yield argument.value


def blob_references(spec: Any) -> list[BlobReference]:
    """Every ``blobFileValue`` in the ML program of ``spec`` (none for other model types)."""
    if spec.WhichOneof("Type") != "mlProgram":
        return []
    references = []
    for op in iter_operations(spec):
        for value in _stored_values(op):
            if value.WhichOneof("value") != "blobFileValue":
                continue
            dtype, shape = _tensor_type(value)
            blob = value.blobFileValue
            references.append(BlobReference(_op_name(op), blob.fileName, blob.offset, dtype, shape))
    return references
