"""Predicted device of every op (ANE, likely CPU/GPU, unknown) and the switches per call.

Why: on a Mac, ops the ANE does not take run on the CPU (or GPU), and every switch between
them costs a round trip per call, per token for a decoder. Core ML's own plan exists only on
macOS 14.4+; this predicts it anywhere from rules published by people who measured it.

Why data, not code: the rules live in ``placement_rules.json`` beside this module (package
data), one row per published rule with its sources named, so a new measurement is one row
and a reader can check every claim. This module is only the interpreter: a row matches an op
when the op's type is in the row's ``ops`` (when given) and every condition in ``when``
holds (:data:`CONDITIONS`); rows are tried in order and the first match decides; an op no
row matches is ``unknown``.

Switches per call: transitions between ``ane`` and ``cpu-gpu`` along the program's op order
(constants left out). ``unknown`` ops are assumed to run where the op before them ran (they
neither add nor end a run), so ``switches`` counts only what the rules predict;
``switches_if_unknown_off`` counts every unknown op as off the ANE, the worst case.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ane_core.errors import UsageError
from ane_core.file_checks.lfs import refuse_lfs_pointer
from ane_core.inspect.program import Function, Operation, Program, TensorInfo

TABLE_NAME = "placement_rules.json"
MAX_TABLE_BYTES = 1 << 20
"""A table is a few kilobytes; anything past a megabyte is not one (and is not read)."""
DEVICES = ("ane", "cpu-gpu", "unknown")
ANE, OFF_ANE, UNKNOWN = DEVICES


class PlacementTableError(UsageError):
    """A placement table that does not parse or names an unknown condition or device."""


@dataclass(frozen=True)
class Source:
    name: str
    url: str = ""


@dataclass(frozen=True)
class PlacementRule:
    """One row of the table: which ops, under which conditions, go to which device."""

    id: str
    device: str
    claim: str
    sources: tuple[Source, ...]
    ops: frozenset[str] | None = None
    when: Mapping[str, Any] = field(default_factory=dict)

    def matches(self, op: Operation, view: _OpView) -> bool:
        if self.ops is not None and op.type not in self.ops:
            return False
        return all(CONDITIONS[key](view, value) for key, value in self.when.items())

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "device": self.device,
            "ops": None if self.ops is None else sorted(self.ops),
            "when": dict(self.when),
            "claim": self.claim,
            "sources": [{"name": s.name, "url": s.url} for s in self.sources],
        }


@dataclass(frozen=True)
class PlacementTable:
    rules: tuple[PlacementRule, ...]
    origin: str

    def rule(self, rule_id: str) -> PlacementRule:
        return next(r for r in self.rules if r.id == rule_id)


class _OpView:
    """What a condition may ask about one op: its tensors, which of them are computed from
    the model's input values, and the function's states."""

    def __init__(
        self, op: Operation, function: Function, dependent: set[str], enumerated: set[str]
    ) -> None:
        self.op = op
        self.function = function
        self.dependent = dependent
        self.enumerated = enumerated

    def tensor(self, name: str) -> TensorInfo | None:
        return self.function.tensors.get(name)

    def computed_tensors(self) -> list[TensorInfo]:
        """The op's outputs and its inputs that are not constants (weights are not buffers
        the op computes on the device; their size shows in the outputs)."""
        inputs = [self.tensor(n) for n in self.op.input_names() if not self.function.is_constant(n)]
        return [t for t in [*inputs, *self.op.outputs] if t is not None]

    def dependent_tensors(self) -> list[TensorInfo]:
        """The op's inputs and outputs computed from the model's input values."""
        names = [*self.op.input_names(), *(t.name for t in self.op.outputs)]
        found = (self.tensor(n) for n in names if n in self.dependent)
        return [t for t in found if t is not None]


def _dims(view: _OpView) -> Iterable[int]:
    for tensor in view.computed_tensors():
        yield from (d for d in tensor.shape or () if d is not None)


CONDITIONS: dict[str, Callable[[_OpView, Any], bool]] = {
    # an input of the op is computed from the model's input values (not constants or shapes)
    "value_dependent": lambda v, want: any(n in v.dependent for n in v.op.input_names()) == want,
    # a tensor the op reads or writes, computed from the input values, has one of these dtypes
    "dtypes": lambda v, dtypes: any(t.dtype in dtypes for t in v.dependent_tensors()),
    # an output has one of these dtypes
    "output_dtypes": lambda v, dtypes: any(t.dtype in dtypes for t in v.op.outputs),
    # an output or non-constant input has an axis longer than N
    "dim_over": lambda v, n: any(d > n for d in _dims(v)),
    # an output or non-constant input has a last axis longer than N
    "last_dim_over": lambda v, n: any(
        bool(t.shape) and t.shape[-1] is not None and t.shape[-1] > n  # type: ignore[index]
        for t in v.computed_tensors()
    ),
    # an output or non-constant input has more than N axes
    "rank_over": lambda v, n: any(t.rank is not None and t.rank > n for t in v.computed_tensors()),
    # an output's shape is known only at run time (a range-flexible input or a data-dependent
    # shape; shapes from enumerated-shape inputs are not: Core ML compiles each of them)
    "flexible_output": lambda v, want: (
        any(not t.is_static and t.name not in v.enumerated for t in v.op.outputs) == want
    ),
    # one of these parameters is bound to a value computed from the input values
    "dynamic_params": lambda v, params: any(
        n in v.dependent for p in params for n in v.op.inputs.get(p, ())
    ),
    # the op reads or writes a Core ML state whose last axis is not a multiple of N
    "state_last_dim_not_multiple_of": lambda v, n: any(
        (t := v.tensor(name)) is not None
        and bool(t.shape)
        and t.shape[-1] is not None  # type: ignore[index]
        and t.shape[-1] % n != 0  # type: ignore[index]
        for name in v.op.input_names()
        if name in v.function.states
    ),
}


_FLAG, _NAMES, _COUNT = "true or false", "a list of names", "a positive integer"
CONDITION_VALUES = {
    "value_dependent": _FLAG,
    "flexible_output": _FLAG,
    "dtypes": _NAMES,
    "output_dtypes": _NAMES,
    "dynamic_params": _NAMES,
    "dim_over": _COUNT,
    "last_dim_over": _COUNT,
    "rank_over": _COUNT,
    "state_last_dim_not_multiple_of": _COUNT,
}
"""What each condition's value must be, checked when the table loads (not mid-prediction)."""


def _valid_value(kind: str, value: Any) -> bool:
    if kind == _FLAG:
        return isinstance(value, bool)
    if kind == _NAMES:
        return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _fail(origin: str, where: str, problem: str) -> PlacementTableError:
    return PlacementTableError(
        f"{origin}: {where} {problem}.",
        "Fix the row; every row needs an id, a device (ane, cpu-gpu or unknown), a claim, "
        "at least one named source, and ops and/or when.",
    )


def _rule(row: Any, index: int, origin: str) -> PlacementRule:
    where = f"rule {index + 1}"
    if not isinstance(row, dict):
        raise _fail(origin, where, "is not an object")
    where = f"rule {row.get('id', index + 1)!r}"
    unknown_keys = set(row) - {"id", "ops", "when", "device", "claim", "sources"}
    if unknown_keys:
        raise _fail(origin, where, f"has unknown keys {sorted(unknown_keys)}")
    if not isinstance(row.get("id"), str) or not row["id"]:
        raise _fail(origin, where, "has no id")
    if row.get("device") not in DEVICES:
        raise _fail(origin, where, f"has device {row.get('device')!r}")
    if not isinstance(row.get("claim"), str) or not row["claim"].strip():
        raise _fail(origin, where, "says no claim")
    sources = row.get("sources")
    if not isinstance(sources, list) or not sources:
        raise _fail(origin, where, "names no source")
    parsed_sources = []
    for source in sources:
        if not isinstance(source, dict) or not str(source.get("name", "")).strip():
            raise _fail(origin, where, "has a source without a name")
        parsed_sources.append(Source(str(source["name"]), str(source.get("url", ""))))
    ops = row.get("ops")
    if ops is not None and (not isinstance(ops, list) or not all(isinstance(o, str) for o in ops)):
        raise _fail(origin, where, "has ops that are not a list of op type names")
    when = row.get("when", {})
    if not isinstance(when, dict):
        raise _fail(origin, where, "has a 'when' that is not an object")
    unknown_conditions = set(when) - set(CONDITIONS)
    if unknown_conditions:
        raise _fail(origin, where, f"has unknown conditions {sorted(unknown_conditions)}")
    for key, value in when.items():
        if not _valid_value(CONDITION_VALUES[key], value):
            raise _fail(origin, where, f"gives {key} {value!r}, not {CONDITION_VALUES[key]}")
    if ops is None and not when:
        raise _fail(origin, where, "matches every op (give ops or when)")
    return PlacementRule(
        id=row["id"],
        device=row["device"],
        claim=row["claim"],
        sources=tuple(parsed_sources),
        ops=None if ops is None else frozenset(ops),
        when=dict(when),
    )


def parse_table(data: Any, origin: str) -> PlacementTable:
    """A table from its parsed JSON (``origin`` names it in errors)."""
    rows = data.get("rules") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        raise _fail(origin, "the table", "has no 'rules' list")
    rules = tuple(_rule(row, i, origin) for i, row in enumerate(rows))
    ids = Counter(r.id for r in rules)
    repeated = sorted(i for i, n in ids.items() if n > 1)
    if repeated:
        raise _fail(origin, "the table", f"repeats the rule ids {repeated}")
    return PlacementTable(rules, origin)


def load_table(path: str | Path | None = None) -> PlacementTable:
    """The placement table at ``path``, by default the one shipped in this package."""
    if path is None:
        text = resources.files("ane_core.inspect").joinpath(TABLE_NAME).read_text("utf-8")
        origin = f"ane_core/inspect/{TABLE_NAME}"
    else:
        origin = str(path)
        try:
            refuse_lfs_pointer(path, PlacementTableError)
            with open(path, "rb") as handle:
                raw = handle.read(MAX_TABLE_BYTES + 1)
        except OSError as error:
            raise PlacementTableError(
                f"cannot read the placement table {path}: {error.strerror or error}.",
                "Pass an existing JSON file.",
            ) from None
        if len(raw) > MAX_TABLE_BYTES:
            raise _fail(origin, "the table", f"is larger than {MAX_TABLE_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise _fail(origin, "the table", f"is not UTF-8 text (byte {error.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise _fail(
            origin, "the table", f"is not JSON ({error.msg}, line {error.lineno})"
        ) from None
    return parse_table(data, origin)


@dataclass(frozen=True)
class PlacedOp:
    """One op (constants left out) with its predicted device and the rule that decided."""

    op_type: str
    name: str
    output: str
    function: str
    device: str
    rule: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "op_type": self.op_type,
            "op": self.name,
            "output": self.output,
            "function": self.function,
            "device": self.device,
            "rule": self.rule,
        }


def count_switches(devices: Iterable[str], *, unknown_off: bool = False) -> int:
    """Transitions between the ANE and anything else along ``devices`` (program order).

    ``unknown`` entries are skipped (the op runs where its neighbour runs), or with
    ``unknown_off`` counted as off the ANE. Any device name other than ``ane`` and
    ``unknown`` (``cpu``, ``gpu``, ``cpu-gpu``) is off the ANE.
    """
    switches, previous = 0, None
    for device in devices:
        if device == UNKNOWN:
            if not unknown_off:
                continue
            device = OFF_ANE
        on_ane = device == ANE
        if previous is not None and on_ane != previous:
            switches += 1
        previous = on_ane
    return switches


@dataclass
class Placement:
    """The predicted device of every non-constant op, in program order (per function)."""

    ops: list[PlacedOp]
    table: PlacementTable

    def counts(self) -> dict[str, int]:
        found = Counter(op.device for op in self.ops)
        return {device: found.get(device, 0) for device in DEVICES}

    def switches_by_function(self, *, unknown_off: bool = False) -> dict[str, int]:
        functions = dict.fromkeys(op.function for op in self.ops)
        return {
            name: count_switches(
                (op.device for op in self.ops if op.function == name), unknown_off=unknown_off
            )
            for name in functions
        }

    @property
    def switches(self) -> int:
        """Per call of one function: the most of any function (a call runs one)."""
        return max(self.switches_by_function().values(), default=0)

    @property
    def switches_if_unknown_off(self) -> int:
        return max(self.switches_by_function(unknown_off=True).values(), default=0)

    def by_rule(self) -> Counter[str]:
        return Counter(op.rule or "(no rule)" for op in self.ops if op.device != ANE)

    def summary(self) -> str:
        counts = self.counts()
        return (
            f"{counts[ANE]} ANE, {counts[OFF_ANE]} likely CPU/GPU, {counts[UNKNOWN]} unknown; "
            f"{self.switches} device switches per call "
            f"({self.switches_if_unknown_off} if every unknown op ran off the ANE)"
        )

    def to_dict(self) -> dict[str, Any]:
        used = {op.rule for op in self.ops if op.rule is not None}
        return {
            "table": self.table.origin,
            "ops_by_device": self.counts(),
            "switches_per_call": self.switches,
            "switches_if_unknown_off": self.switches_if_unknown_off,
            "switches_by_function": self.switches_by_function(),
            "not_ane_by_rule": dict(self.by_rule().most_common()),
            "off_ane": [op.to_dict() for op in self.ops if op.device == OFF_ANE],
            "unknown": [op.to_dict() for op in self.ops if op.device == UNKNOWN],
            "rules": [r.to_dict() for r in self.table.rules if r.id in used],
            "summary": self.summary(),
        }


def place_function(
    function: Function, table: PlacementTable, flexibility: Mapping[str, str] | None = None
) -> list[PlacedOp]:
    """``flexibility``: per flexible model input, ``range``, ``enumerated`` or ``unbounded``
    (:func:`ane_core.inspect.census.input_flexibility`)."""
    dependent = function.value_dependent()
    enumerated_inputs = {n for n, kind in (flexibility or {}).items() if kind == "enumerated"}
    enumerated = function.derived_from(enumerated_inputs) if enumerated_inputs else set()
    placed = []
    for op in function.operations:
        if op.is_const:
            continue
        view = _OpView(op, function, dependent, enumerated)
        rule = next((r for r in table.rules if r.matches(op, view)), None)
        placed.append(
            PlacedOp(
                op_type=op.type,
                name=op.name,
                output=op.outputs[0].name if op.outputs else "",
                function=function.name,
                device=rule.device if rule is not None else UNKNOWN,
                rule=rule.id if rule is not None else None,
            )
        )
    return placed


def predict_placement(
    program: Program,
    table: PlacementTable | None = None,
    *,
    flexibility: Mapping[str, str] | None = None,
) -> Placement:
    """Every non-constant op of ``program`` placed by ``table`` (default: the shipped one);
    ``flexibility`` as for :func:`place_function`."""
    table = table if table is not None else load_table()
    ops = [
        op for function in program.functions for op in place_function(function, table, flexibility)
    ]
    return Placement(ops, table)
