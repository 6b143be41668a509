"""What in an ML program keeps it off the Apple Neural Engine, as one table of rules.

Why a table: the ANE's limits are not documented by Apple in one place; each rule below
carries the one-line reason (and where it comes from) that the report prints next to every
finding, so a user can judge it, and a new rule is one row plus one small check.

Every check looks at the program only (shapes, dtypes, op types), so findings are the same on
any OS. They are precise on purpose: constants, shape arithmetic and tensors too small to
matter are left out, and each check documents what it skips.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ane_core.inspect.program import Function, Operation, TensorInfo, dtype_bits

MAX_ANE_DIM = 16384
"""Largest size of any one axis the ANE takes."""

MAX_ANE_RANK = 4
"""ANE buffers are 4-D (batch, channels, height, width)."""

ANE_ROW_ALIGNMENT = 64
"""The ANE stores the last axis of a buffer contiguously, padded to a multiple of 64 bytes."""

MIN_PADDING_WASTE_FRACTION = 0.25
MIN_PADDING_WASTE_BYTES = 256 * 1024
"""Padding is reported when at least a quarter of the padded buffer *and* 256 KiB are
waste: smaller amounts are noise next to the megabytes of weights an inference streams (the
toy model's 16-wide head splits waste 1 KiB each, Whisper's 1500-frame rows 0.3 %)."""

CPU_INTEGER_DTYPES = frozenset({"INT16", "INT32", "INT64", "UINT16", "UINT32", "UINT64"})
"""Integer types the ANE does not compute in. 8-bit types are left out (quantised
activations run on the ANE of A17 Pro / M4 and newer), and so are bools (comparison masks)."""

GATHER_OPS = frozenset(
    {"gather", "gather_along_axis", "gather_nd", "scatter", "scatter_along_axis", "scatter_nd"}
)


@dataclass(frozen=True)
class Finding:
    """One op or tensor that breaks one rule; ``op_*`` and ``tensor`` are ``None`` for a
    finding about the whole program."""

    rule: str
    detail: str
    op_type: str | None = None
    op_name: str | None = None
    tensor: str | None = None
    function: str = "main"
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        rule = RULES_BY_ID[self.rule]
        return {
            "rule": self.rule,
            "title": rule.title,
            "effect": rule.effect,
            "op_type": self.op_type,
            "op": self.op_name,
            "tensor": self.tensor,
            "function": self.function,
            "detail": self.detail,
            "reason": rule.reason,
            **self.data,
        }


@dataclass
class RuleContext:
    """What a check may look at: one function, the program's compute precision (``fp16``,
    ``fp32`` or ``None`` when it has no float compute) and, per flexible model input, how it
    is flexible (``range``, ``enumerated`` or ``unbounded``)."""

    function: Function
    precision: str | None
    flexibility: dict[str, str] = field(default_factory=dict)
    _dependent: set[str] | None = None

    @property
    def value_dependent(self) -> set[str]:
        if self._dependent is None:
            self._dependent = self.function.value_dependent()
        return self._dependent

    def computed_tensors(self) -> Iterator[tuple[Operation | None, TensorInfo]]:
        """Model inputs (op ``None``) and every non-constant op output."""
        for tensor in self.function.inputs:
            yield None, tensor
        for op in self.function.operations:
            if not op.is_const:
                for tensor in op.outputs:
                    yield op, tensor

    def finding(self, rule: str, op: Operation | None, tensor: str | None, detail: str, **data):
        return Finding(
            rule=rule,
            detail=detail,
            op_type=op.type if op is not None else ("input" if tensor else None),
            op_name=op.name if op is not None else tensor,
            tensor=tensor,
            function=self.function.name,
            data=data,
        )


Check = Callable[[RuleContext], Iterator[Finding]]


@dataclass(frozen=True)
class Rule:
    """One ANE rule. ``effect``: ``off-ane`` (the op or tensor runs on GPU/CPU), ``slow``
    (it stays but costs memory traffic) or ``size`` (it costs package and memory size).
    ``check`` looks at the program; ``None`` for a rule that reads the package's files
    (run by :func:`ane_core.inspect.inspect_package`)."""

    id: str
    title: str
    effect: str
    reason: str
    check: Check | None


def _check_cast(ctx: RuleContext) -> Iterator[Finding]:
    """Every ``cast`` op."""
    for op in ctx.function.operations:
        if op.type != "cast":
            continue
        source = ctx.function.tensors.get(next(iter(op.inputs.get("x", ())), ""))
        out = op.outputs[0]
        src = source.dtype if source is not None else "?"
        yield ctx.finding("cast", op, out.name, f"cast {src} -> {out.dtype}")


def _check_float32(ctx: RuleContext) -> Iterator[Finding]:
    """In an FP16 program, each op (casts aside) with a float32 output; a float32 program
    gets one program-wide finding instead of one per op."""
    if ctx.precision == "fp32":
        yield ctx.finding("float32-compute", None, None, "the whole program computes in float32")
        return
    if ctx.precision != "fp16":
        return
    for op in ctx.function.operations:
        if op.is_const or op.type == "cast":
            continue
        for tensor in op.outputs:
            if tensor.dtype in ("FLOAT32", "FLOAT64"):
                yield ctx.finding(
                    "float32-compute", op, tensor.name, f"{op.type} computes {tensor.describe()}"
                )
                break


def _check_large_dim(ctx: RuleContext) -> Iterator[Finding]:
    """Model inputs and op outputs with an axis above 16384 (weights are checked through
    the op outputs they produce)."""
    for op, tensor in ctx.computed_tensors():
        big = [(axis, d) for axis, d in enumerate(tensor.shape or ()) if d and d > MAX_ANE_DIM]
        if big:
            axes = ", ".join(f"axis {axis} is {d}" for axis, d in big)
            yield ctx.finding(
                "dim-over-16384", op, tensor.name, f"{tensor.describe()}: {axes} > {MAX_ANE_DIM}"
            )


def _check_rank(ctx: RuleContext) -> Iterator[Finding]:
    """Model inputs and op outputs of rank 5 or more."""
    for op, tensor in ctx.computed_tensors():
        if tensor.rank is not None and tensor.rank > MAX_ANE_RANK:
            yield ctx.finding(
                "rank-over-4", op, tensor.name, f"{tensor.describe()} has rank {tensor.rank}"
            )


def padding_waste(tensor: TensorInfo) -> tuple[int, int] | None:
    """``(wasted bytes, padded bytes)`` of ``tensor`` with its last axis padded to 64 bytes,
    or ``None`` when its shape is not static."""
    if not tensor.is_static or not tensor.shape:
        return None
    row = (tensor.shape[-1] * dtype_bits(tensor.dtype) + 7) // 8
    padded_row = math.ceil(row / ANE_ROW_ALIGNMENT) * ANE_ROW_ALIGNMENT
    rows = math.prod(tensor.shape[:-1])
    return (padded_row - row) * rows, padded_row * rows


def _check_padding(ctx: RuleContext) -> Iterator[Finding]:
    """Model inputs and op outputs whose last-axis padding wastes a large share of their
    buffer (thresholds above)."""
    for op, tensor in ctx.computed_tensors():
        waste = padding_waste(tensor)
        if waste is None or waste[1] == 0:
            continue
        wasted, padded = waste
        fraction = wasted / padded
        if fraction >= MIN_PADDING_WASTE_FRACTION and wasted >= MIN_PADDING_WASTE_BYTES:
            row = (tensor.shape[-1] * dtype_bits(tensor.dtype) + 7) // 8  # type: ignore[index]
            yield ctx.finding(
                "last-axis-padding",
                op,
                tensor.name,
                f"{tensor.describe()}: last axis is {row} B, padded to 64 B rows; "
                f"{_mib(wasted)} of {_mib(padded)} wasted ({100 * fraction:.1f} %)",
                waste_bytes=wasted,
                padded_bytes=padded,
                waste_percent=round(100 * fraction, 2),
            )


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"


def _check_flexible(ctx: RuleContext) -> Iterator[Finding]:
    """Model inputs with range or unbounded flexibility (enumerated shapes are fine: each
    one is compiled for the ANE), and op outputs whose shape depends on data rather than on a
    flexible input."""
    flexible_inputs = set()
    for tensor in ctx.function.inputs:
        if tensor.is_static:
            continue
        flexible_inputs.add(tensor.name)
        kind = ctx.flexibility.get(tensor.name, "range")
        if kind == "enumerated":
            continue
        yield ctx.finding(
            "flexible-shape", None, tensor.name, f"input {tensor.describe()} has {kind} shape"
        )
    from_inputs = ctx.function.derived_from(flexible_inputs)
    for op in ctx.function.operations:
        if op.is_const:
            continue
        for tensor in op.outputs:
            if tensor.dtype != "STRING" and not tensor.is_static and tensor.name not in from_inputs:
                yield ctx.finding(
                    "flexible-shape",
                    op,
                    tensor.name,
                    f"{op.type} output {tensor.describe()} has a data-dependent shape",
                )
                break


def _check_integer(ctx: RuleContext) -> Iterator[Finding]:
    """Ops that compute on input-dependent 16/32/64-bit integers (casts and gathers have
    their own rules; shape arithmetic and constants do not depend on input values)."""
    dependent = ctx.value_dependent
    for op in ctx.function.operations:
        if op.is_const or op.type == "cast" or op.type in GATHER_OPS:
            continue
        names = [*op.input_names(), *(t.name for t in op.outputs)]
        for name in names:
            tensor = ctx.function.tensors.get(name)
            if tensor is not None and name in dependent and tensor.dtype in CPU_INTEGER_DTYPES:
                yield ctx.finding(
                    "integer-compute",
                    op,
                    name,
                    f"{op.type} computes on {tensor.describe()} from the input values",
                )
                break


def _check_gather(ctx: RuleContext) -> Iterator[Finding]:
    """Gather/scatter ops whose data or indices depend on the input values."""
    dependent = ctx.value_dependent
    for op in ctx.function.operations:
        if op.type not in GATHER_OPS:
            continue
        if any(name in dependent for name in op.input_names()):
            source = ctx.function.tensors.get(next(iter(op.inputs.get("x", ())), ""))
            what = source.describe() if source is not None else "its input"
            yield ctx.finding(
                "gather", op, op.outputs[0].name, f"{op.type} from {what} by runtime indices"
            )


def _batched_axes(op: Operation, ctx: RuleContext) -> tuple[str, int] | None:
    """How a matmul/einsum of two activations is batched beyond the leading batch axis:
    ``(description, count)``, or ``None`` for the per-head split form."""
    out = op.outputs[0]
    if out.shape is None:
        return None
    if op.type == "matmul":
        x, y = (next(iter(op.inputs.get(k, ())), "") for k in ("x", "y"))
        if ctx.function.is_constant(x) or ctx.function.is_constant(y) or len(out.shape) < 3:
            return None
        # Rank 4+: axis 0 is the model batch and axes 1..-3 are heads; rank 3 is (B*H, S, d).
        if len(out.shape) >= 4:
            count, what = math.prod(d or 1 for d in out.shape[1:-2]), "heads"
        else:
            count, what = out.shape[0] or 1, "heads x batch"
        return (f"matmul -> {out.describe()} batched over {count} {what}", count)
    equation = ctx.function.const_value(next(iter(op.inputs.get("equation", ())), ""))
    if isinstance(equation, list):
        equation = equation[0] if equation else None
    if not isinstance(equation, str) or "->" not in equation:
        return None
    operands, result = equation.replace(" ", "").split("->")
    terms = operands.split(",")
    if len(terms) != 2 or len(result) != len(out.shape):
        return None
    shared = [c for c in result[1:] if c in terms[0] and c in terms[1]]
    count = math.prod(out.shape[result.index(c)] or 1 for c in shared)
    axes = "".join(shared)
    return (f"einsum '{equation}' -> {out.describe()} batched over {count} ({axes})", count)


def _check_attention_layout(ctx: RuleContext) -> Iterator[Finding]:
    """Matmuls of two activations batched over a head axis (rank-3/4 ``(B, H, S, d)``
    attention) and einsums with a shared non-leading axis larger than 1."""
    for op in ctx.function.operations:
        if op.type not in ("matmul", "einsum") or not op.outputs:
            continue
        batched = _batched_axes(op, ctx)
        if batched is not None and batched[1] > 1:
            yield ctx.finding("not-split-heads", op, op.outputs[0].name, batched[0])


RULES: tuple[Rule, ...] = (
    Rule(
        "cast",
        "cast ops",
        "off-ane",
        "The ANE computes float16 only: the float32/integer side of a cast runs on CPU/GPU and "
        "each cast copies the tensor (issue 6: Xcode showed the old Whisper FP16 encoder full "
        "of them).",
        _check_cast,
    ),
    Rule(
        "float32-compute",
        "float32 compute",
        "off-ane",
        "The ANE computes float16 only; coremltools' typed-execution guide: a float32 program "
        "runs on GPU and CPU.",
        _check_float32,
    ),
    Rule(
        "dim-over-16384",
        "axis above 16384",
        "off-ane",
        "The ANE takes at most 16384 along any axis; bigger tensors (e.g. 51865-wide logits) "
        "run on GPU/CPU unless chunked.",
        _check_large_dim,
    ),
    Rule(
        "rank-over-4",
        "rank above 4",
        "off-ane",
        "ANE buffers are 4-D (B, C, H, W); Apple's 'Deploying Transformers on the ANE' keeps "
        "every tensor 4-D for that reason.",
        _check_rank,
    ),
    Rule(
        "last-axis-padding",
        "last-axis padding waste",
        "slow",
        "The ANE pads a buffer's last axis to 64 bytes (Apple, 'Deploying Transformers on the "
        "ANE'): a narrow last axis multiplies memory traffic.",
        _check_padding,
    ),
    Rule(
        "flexible-shape",
        "flexible shapes",
        "off-ane",
        "Core ML runs range-flexible models on the ANE for the default shape only (Apple "
        "developer forums 724930); enumerated shapes are each compiled for it.",
        _check_flexible,
    ),
    Rule(
        "integer-compute",
        "integer compute",
        "off-ane",
        "The ANE has no 16/32/64-bit integer arithmetic: ops on runtime integers run on CPU.",
        _check_integer,
    ),
    Rule(
        "gather",
        "gather/scatter",
        "off-ane",
        "Gather and scatter are not ANE ops (hollance/neural-engine 'unsupported layers'); "
        "they run on CPU/GPU.",
        _check_gather,
    ),
    Rule(
        "duplicate-weights",
        "duplicated weights",
        "size",
        "A tensor stored twice (same bytes, or a reshape or transpose of another) ships and "
        "loads twice: a tied embedding kept as a lookup table and as the logits weight cost "
        "Whisper tiny's decoder +70% (issue 19). Read from the weight file.",
        None,
    ),
    Rule(
        "not-split-heads",
        "attention not split per head",
        "slow",
        "Apple's ANE attention splits heads and uses one 4-D einsum per head; a matmul "
        "batched over heads needs (B, H, S, d) reshapes and transposes and large "
        "intermediates.",
        _check_attention_layout,
    ),
)

RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}


def run_rules(
    function: Function, *, precision: str | None, flexibility: dict[str, str] | None = None
) -> list[Finding]:
    """Every finding of every rule for one function, in table order."""
    ctx = RuleContext(function, precision, dict(flexibility or {}))
    return [finding for rule in RULES if rule.check is not None for finding in rule.check(ctx)]
