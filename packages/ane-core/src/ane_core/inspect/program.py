"""A saved ML program as plain Python data: tensors with dtypes and shapes, ops, constants.

Why our own small model instead of the protobuf: every rule, the census and the cost
estimate ask the same questions (what is this tensor's shape, which op made it, is it a
constant, does it depend on the model's input values), and answering them once here keeps
each rule a few lines long. Only the package's protobuf spec is read: no PyTorch, no Core ML
runtime, no weight file.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ane_core.mil import dtype_bits  # re-exported: rules and tests import it from here

CONST_OPS = frozenset({"const"})
"""Ops whose output is fixed at load time. ``constexpr_*`` ops (weight decompression) too."""

SHAPE_ONLY_OPS = frozenset({"shape"})
"""Ops whose output depends on their input's shape, never on its values."""

FLOAT_DTYPES = frozenset({"FLOAT16", "BFLOAT16", "FLOAT32", "FLOAT64"})


@dataclass(frozen=True)
class TensorInfo:
    """A named value of the program: ``shape`` holds ``None`` for a dimension known only at
    run time, and is ``None`` itself when even the rank is unknown."""

    name: str
    dtype: str
    shape: tuple[int | None, ...] | None

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def is_static(self) -> bool:
        return self.shape is not None and all(d is not None for d in self.shape)

    @property
    def numel(self) -> int | None:
        """Element count, or ``None`` for a flexible shape."""
        if not self.is_static:
            return None
        return math.prod(self.shape)  # type: ignore[arg-type]

    @property
    def nbytes(self) -> int | None:
        numel = self.numel
        return None if numel is None else (numel * dtype_bits(self.dtype) + 7) // 8

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    def describe(self) -> str:
        """``FLOAT16[1, 384, 1, 1500]`` (``?`` marks a flexible dimension)."""
        if self.shape is None:
            return f"{self.dtype}[...]"
        return f"{self.dtype}[{', '.join('?' if d is None else str(d) for d in self.shape)}]"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": _shape_list(self.shape)}


def _shape_list(shape: tuple[int | None, ...] | None) -> list[int | None] | None:
    return None if shape is None else list(shape)


@dataclass
class Operation:
    """One MIL op. ``inputs`` maps each parameter to the names of the values bound to it
    (immediate values have no name and are left out); ``value`` holds a const op's value when
    it is stored inline and small (strings, scalars, short lists), else ``None``."""

    type: str
    name: str
    function: str
    inputs: dict[str, tuple[str, ...]]
    outputs: tuple[TensorInfo, ...]
    value: Any = None
    in_weight_file: bool = False
    stored_bytes: int = 0
    """Bytes of the data a ``const`` or ``constexpr_*`` op holds (for a compressed weight:
    its indices, palette or int8 values and scales, not the dense tensor it expands to)."""

    @property
    def is_const(self) -> bool:
        return self.type in CONST_OPS or self.type.startswith("constexpr_")

    def input_names(self) -> Iterator[str]:
        for names in self.inputs.values():
            yield from names


@dataclass
class Function:
    """One function of the program with everything the rules need to look up."""

    name: str
    opset: str
    inputs: tuple[TensorInfo, ...]
    output_names: tuple[str, ...]
    operations: list[Operation] = field(default_factory=list)
    tensors: dict[str, TensorInfo] = field(default_factory=dict)
    producers: dict[str, Operation] = field(default_factory=dict)
    states: frozenset[str] = frozenset()
    """Names of the inputs that are Core ML state (``stateType``): buffers the model keeps
    between calls and updates in place, not values the caller passes."""

    def const_value(self, name: str) -> Any:
        """The inline value of a constant named ``name``, or ``None``."""
        producer = self.producers.get(name)
        return producer.value if producer is not None and producer.is_const else None

    def is_constant(self, name: str) -> bool:
        producer = self.producers.get(name)
        return producer is not None and producer.is_const

    def value_dependent(self) -> set[str]:
        """Names of the values that change with the model's input *values*.

        Why: integer and gather ops that only compute shapes or index constants are folded or
        cheap; the ones that act on input-dependent data are the ones that run per inference.
        A ``shape`` op's output depends on its input's shape only, so it does not propagate.
        """
        dependent = {t.name for t in self.inputs}
        for op in self.operations:  # ops are in program order
            if op.is_const or op.type in SHAPE_ONLY_OPS:
                continue
            if any(name in dependent for name in op.input_names()):
                dependent.update(t.name for t in op.outputs)
        return dependent

    def derived_from(self, roots: set[str]) -> set[str]:
        """Names of ``roots`` and of every value computed from them (shape ops included)."""
        derived = set(roots)
        for op in self.operations:
            if any(name in derived for name in op.input_names()):
                derived.update(t.name for t in op.outputs)
        return derived


@dataclass
class Program:
    """Every function of a saved ML program."""

    functions: list[Function]

    @property
    def operations(self) -> Iterator[Operation]:
        for function in self.functions:
            yield from function.operations


def _tensor_from_type(name: str, value_type: Any) -> TensorInfo:
    from coremltools.proto import MIL_pb2

    kind = value_type.WhichOneof("type")
    if kind == "stateType":
        value_type = value_type.stateType.wrappedType
        kind = value_type.WhichOneof("type")
    if kind != "tensorType":
        return TensorInfo(name, (kind or "unknown").replace("Type", "").upper(), None)
    tensor = value_type.tensorType
    dtype = MIL_pb2.DataType.Name(tensor.dataType)
    if tensor.rank < 0:
        return TensorInfo(name, dtype, None)
    dims = tuple(
        d.constant.size if d.WhichOneof("dimension") == "constant" else None
        for d in tensor.dimensions
    )
    return TensorInfo(name, dtype, dims)


_INLINE_LIMIT = 64
"""Inline const values longer than this are weights, not parameters: not decoded."""


def _inline_value(value: Any) -> Any:
    if value.WhichOneof("value") != "immediateValue":
        return None
    tensor = value.immediateValue.tensor
    kind = tensor.WhichOneof("value")
    if kind is None or kind == "bytes":
        return None
    values = list(getattr(tensor, kind).values)
    if len(values) > _INLINE_LIMIT:
        return None
    is_scalar = value.type.WhichOneof("type") == "tensorType" and value.type.tensorType.rank == 0
    return values[0] if is_scalar and len(values) == 1 else values


def _operation(proto: Any, function: str) -> Operation:
    outputs = tuple(_tensor_from_type(o.name, o.type) for o in proto.outputs)
    inputs = {
        key: tuple(a.name for a in binding.arguments if a.WhichOneof("binding") == "name")
        for key, binding in proto.inputs.items()
    }
    name_attr = proto.attributes.get("name")
    name = outputs[0].name if outputs else proto.type
    if name_attr is not None and name_attr.immediateValue.tensor.strings.values:
        name = name_attr.immediateValue.tensor.strings.values[0]
    op = Operation(proto.type, name, function, inputs, outputs)
    val = proto.attributes.get("val")
    if proto.type in CONST_OPS and val is not None:
        op.in_weight_file = val.WhichOneof("value") == "blobFileValue"
        op.value = _inline_value(val)
        op.stored_bytes = sum(t.nbytes or 0 for t in outputs)
    elif op.is_const:
        # constexpr_* ops hold their data themselves: as attributes (iOS16 ops) or as values
        # bound to their inputs (iOS18 ops), not as separate const ops.
        stored = [v for key, v in proto.attributes.items() if key != "name"]
        stored += [
            a.value
            for binding in proto.inputs.values()
            for a in binding.arguments
            if a.WhichOneof("binding") == "value"
        ]
        op.stored_bytes = sum(_tensor_from_type("", v.type).nbytes or 0 for v in stored)
        op.in_weight_file = any(v.WhichOneof("value") == "blobFileValue" for v in stored)
    return op


def _walk(block: Any, function: Function) -> None:
    for block_input in block.inputs:
        tensor = _tensor_from_type(block_input.name, block_input.type)
        function.tensors[tensor.name] = tensor
    for proto in block.operations:
        op = _operation(proto, function.name)
        function.operations.append(op)
        for tensor in op.outputs:
            function.tensors[tensor.name] = tensor
            function.producers[tensor.name] = op
        for inner in proto.blocks:
            _walk(inner, function)


def read_program(spec: Any) -> Program:
    """The ML program of a Core ML ``Model`` spec as :class:`Program` (``ValueError`` if the
    spec holds no ML program)."""
    if spec.WhichOneof("Type") != "mlProgram":
        raise ValueError(f"the model is a {spec.WhichOneof('Type')}, not an ML program")
    functions = []
    for name, proto in spec.mlProgram.functions.items():
        opset = proto.opset
        block = proto.block_specializations[opset]
        function = Function(
            name=name,
            opset=opset,
            inputs=tuple(_tensor_from_type(i.name, i.type) for i in proto.inputs),
            output_names=tuple(block.outputs),
            states=frozenset(
                i.name for i in proto.inputs if i.type.WhichOneof("type") == "stateType"
            ),
        )
        function.tensors.update({t.name: t for t in function.inputs})
        _walk(block, function)
        functions.append(function)
    return Program(functions)
