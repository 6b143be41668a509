"""What a saved model declares and contains: I/O, deployment target, metadata, op census,
largest tensors.

Why separate from the rules: this part describes the model without judging it, and it is
what a user checks first (did the export get float16 I/O, the right target, my metadata?).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ane_core._coremltools import coremltools
from ane_core.inspect.program import Program
from ane_core.mil import op_counts


def _array_dtype(code: int) -> str:
    from coremltools.proto import FeatureTypes_pb2

    return FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(code)


def flexibility(array_type: Any) -> tuple[str | None, Any]:
    """How a multi-array feature may change shape: ``(kind, detail)`` with kind ``None``
    (static), ``enumerated``, ``range`` or ``unbounded`` (a range without upper bound)."""
    kind = array_type.WhichOneof("ShapeFlexibility")
    if kind == "enumeratedShapes":
        return "enumerated", [list(s.shape) for s in array_type.enumeratedShapes.shapes]
    if kind == "shapeRange":
        ranges = [[r.lowerBound, r.upperBound] for r in array_type.shapeRange.sizeRanges]
        unbounded = any(upper < 0 for _, upper in ranges)
        return ("unbounded" if unbounded else "range"), ranges
    return None, None


def describe_feature(feature: Any) -> dict[str, Any]:
    """Name, kind, dtype, shape (and flexibility) of one model input or output."""
    kind = feature.type.WhichOneof("Type")
    entry: dict[str, Any] = {"name": feature.name, "kind": kind}
    array = None
    if kind == "multiArrayType":
        array = feature.type.multiArrayType
    elif kind == "stateType":
        array = feature.type.stateType.arrayType
    elif kind == "imageType":
        image = feature.type.imageType
        entry.update(width=image.width, height=image.height)
    if array is not None:
        entry["dtype"] = _array_dtype(array.dataType)
        entry["shape"] = list(array.shape)
        flex, detail = flexibility(array)
        if flex is not None:
            entry["flexibility"] = flex
            entry["flexible_shapes" if flex == "enumerated" else "shape_range"] = detail
    if feature.shortDescription:
        entry["description"] = feature.shortDescription
    return entry


def input_flexibility(spec: Any) -> dict[str, str]:
    """Flexibility kind per flexible model input (see :func:`flexibility`)."""
    kinds = {}
    for feature in spec.description.input:
        if feature.type.WhichOneof("Type") == "multiArrayType":
            kind, _ = flexibility(feature.type.multiArrayType)
            if kind is not None:
                kinds[feature.name] = kind
    return kinds


def deployment_targets(specification_version: int) -> list[str]:
    """The OS releases whose Core ML introduced ``specification_version``: the oldest each
    family can run the model on (e.g. 7 -> iOS16, macOS13, tvOS16, watchOS9)."""
    names = [
        name
        for name, member in coremltools().target.__members__.items()
        if member.value == specification_version
    ]
    first_per_family: dict[str, str] = {}
    for name in names:
        family = name.rstrip("0123456789_")
        first_per_family.setdefault(family, name)  # macOS10_16 and macOS11 share a version
    return list(first_per_family.values())


def describe_metadata(spec: Any) -> dict[str, Any]:
    meta = spec.description.metadata
    return {
        "short_description": meta.shortDescription,
        "author": meta.author,
        "license": meta.license,
        "version": meta.versionString,
        "user_defined": dict(sorted(meta.userDefined.items())),
    }


def largest_tensors(program: Program, limit: int = 10) -> list[dict[str, Any]]:
    """The ``limit`` biggest model inputs and op outputs (constants excluded), by bytes."""
    rows = []
    for function in program.functions:
        for tensor in function.inputs:
            rows.append((tensor.nbytes or 0, "input", tensor, function.name))
        for op in function.operations:
            if not op.is_const:
                rows.extend((t.nbytes or 0, op.type, t, function.name) for t in op.outputs)
    rows.sort(key=lambda row: row[0], reverse=True)
    return [
        {**tensor.to_dict(), "bytes": nbytes, "op_type": op_type, "function": function}
        for nbytes, op_type, tensor, function in rows[:limit]
    ]


def op_census(spec: Any) -> Counter[str]:
    """Count per op type, nested blocks included (``ane_core.mil.op_counts``)."""
    return op_counts(spec)
