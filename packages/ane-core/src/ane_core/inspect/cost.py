"""FLOPs and weight bytes per inference, estimated from the program's shapes.

Why estimate here: Core ML reports no cost off macOS, and even on a Mac its compute plan
gives relative weights only. Matrix ops are counted exactly (2 FLOPs per multiply-add, from
the operand shapes); everything else gets a rough per-output-element factor, which is enough
to tell where the work is. Weights are the bytes every constant stores: a compressed
weight (``constexpr_*`` op) counts its indices, palette or int8 data, not its dense size.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ane_core.inspect.program import Function, Operation, Program

FREE_OPS = frozenset(
    {
        "reshape", "transpose", "split", "concat", "stack", "squeeze", "expand_dims",
        "slice_by_index", "slice_by_size", "identity", "cast", "shape", "pad", "tile",
        "gather", "gather_along_axis", "gather_nd", "scatter", "scatter_along_axis",
        "scatter_nd", "reverse", "band_part", "fill", "range_1d", "read_state",
        "coreml_update_state", "sliding_windows", "pixel_shuffle", "space_to_depth",
        "depth_to_space",
    }
)  # fmt: skip
"""Data movement: no arithmetic."""

FLOPS_PER_ELEMENT = {
    "softmax": 5,  # max, subtract, exp, sum, divide
    "layer_norm": 8,  # mean, subtract, square, mean, rsqrt, multiply, scale, shift
    "instance_norm": 8,
    "l2_norm": 4,
    "batch_norm": 2,  # folded to scale and shift at inference
    "gelu": 8,
    "silu": 4,
    "sigmoid": 4,
    "tanh": 4,
    "erf": 4,
}
"""Rough FLOPs per output element; any other op not listed as free counts 1."""


@dataclass
class Cost:
    """Estimated work and storage of one inference."""

    flops: int = 0
    matmul_flops: int = 0
    flops_by_op_type: Counter[str] = field(default_factory=Counter)
    weight_bytes: int = 0
    weight_file_bytes: int = 0
    weight_file_on_disk: int | None = None
    flexible: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "flops": self.flops,
            "matmul_flops": self.matmul_flops,
            "flops_by_op_type": dict(self.flops_by_op_type.most_common()),
            "weight_bytes": self.weight_bytes,
            "weight_file_bytes": self.weight_file_bytes,
            "weight_file_on_disk": self.weight_file_on_disk,
            "flexible_shapes_counted_as_1": self.flexible,
        }


def _shape(function: Function, op: Operation, key: str) -> tuple[int, ...] | None:
    names = op.inputs.get(key, ())
    tensor = function.tensors.get(names[0]) if names else None
    if tensor is None or tensor.shape is None:
        return None
    return tuple(d or 1 for d in tensor.shape)


def _einsum_contracted(function: Function, op: Operation) -> int | None:
    equation = function.const_value(next(iter(op.inputs.get("equation", ())), ""))
    if isinstance(equation, list):
        equation = equation[0] if equation else None
    if not isinstance(equation, str) or "->" not in equation:
        return None
    operands, result = equation.replace(" ", "").split("->")
    sizes: dict[str, int] = {}
    for term, name in zip(operands.split(","), op.inputs.get("values", ()), strict=False):
        tensor = function.tensors.get(name)
        if tensor is None or tensor.shape is None or len(tensor.shape) != len(term):
            return None
        sizes.update({c: d or 1 for c, d in zip(term, tensor.shape, strict=True)})
    return math.prod(size for c, size in sizes.items() if c not in result)


def multiply_adds(function: Function, op: Operation) -> int | None:
    """Multiply-adds of a matrix op per inference, or ``None`` if ``op`` is not one."""
    out = op.outputs[0] if op.outputs else None
    if out is None or out.shape is None:
        return None
    out_numel = math.prod(d or 1 for d in out.shape)
    if op.type in ("conv", "linear"):
        weight = _shape(function, op, "weight")
        if not weight:
            return None
        per_output = math.prod(weight[1:])  # Cin/groups * kernel, or in_features
        return out_numel * per_output
    if op.type == "conv_transpose":
        x, weight = _shape(function, op, "x"), _shape(function, op, "weight")
        if not x or not weight:
            return None
        return math.prod(x) * math.prod(weight[1:])
    if op.type == "matmul":
        x = _shape(function, op, "x")
        if not x:
            return None
        transpose_x = function.const_value(next(iter(op.inputs.get("transpose_x", ())), ""))
        k = x[-2] if transpose_x and len(x) > 1 else x[-1]
        return out_numel * k
    if op.type == "einsum":
        contracted = _einsum_contracted(function, op)
        return None if contracted is None else out_numel * contracted
    if op.type == "scaled_dot_product_attention":
        q, k = _shape(function, op, "query"), _shape(function, op, "key")
        if not q or not k:
            return None
        scores = math.prod(q[:-1]) * k[-2]
        return scores * q[-1] + out_numel * k[-2]
    return None


def estimate_cost(program: Program, package: Path | None = None) -> Cost:
    """FLOPs and weight bytes of ``program`` (``package``: also measure the weight file)."""
    cost = Cost()
    for function in program.functions:
        for op in function.operations:
            if op.is_const:  # const, and constexpr_* (compressed weights: what is stored)
                cost.weight_bytes += op.stored_bytes
                if op.in_weight_file:
                    cost.weight_file_bytes += op.stored_bytes
                continue
            if op.is_const or op.type in FREE_OPS or not op.outputs:
                continue
            if any(not t.is_static for t in op.outputs):
                cost.flexible = True
            macs = multiply_adds(function, op)
            if macs is not None:
                flops = 2 * macs
                cost.matmul_flops += flops
            else:
                numel = sum(math.prod(d or 1 for d in t.shape or ()) for t in op.outputs)
                flops = numel * FLOPS_PER_ELEMENT.get(op.type, 1)
            cost.flops += flops
            cost.flops_by_op_type[op.type] += flops
    if package is not None:
        weights = Path(package) / "Data" / "com.apple.CoreML" / "weights"
        if weights.is_dir():
            cost.weight_file_on_disk = sum(p.stat().st_size for p in weights.rglob("*.bin"))
    return cost
