"""``ane doctor PACKAGE``: what Core ML does with a package on this Mac, beside the prediction.

Why: ``ane inspect`` predicts where each op runs from published rules (any OS); only Core ML
on a Mac says what it really chose, and the rules are only as good as that comparison. This
compiles the package, loads it with ``CPU_AND_NE`` (the Neural Engine or the CPU, never the
GPU: what an app that wants the ANE asks for), reads Core ML's ``MLComputePlan`` (device and
estimated cost of every op), times the load and a few predictions on random inputs of the
declared shapes, and lines the plan up with the prediction op by op.

Core ML is reached through four functions only, so everything else runs (and is tested)
anywhere: :func:`ane_core.inspect.compute_plan.unavailable_reason` (the platform check),
:func:`_compile`, :func:`_load` and :func:`ane_core.inspect.compute_plan.plan_compiled`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ane_core import coreml_compile
from ane_core._coremltools import coremltools
from ane_core.errors import AneError, UsageError, brief
from ane_core.executor.errors import CoreMLUnavailableError
from ane_core.inspect import compute_plan, inspect_package
from ane_core.inspect.compute_plan import PlannedOp, summarize
from ane_core.inspect.placement import ANE, UNKNOWN, Placement, count_switches

COMPUTE_UNITS = "CPU_AND_NE"
DEFAULT_RUNS = 10

_NUMPY_DTYPES = {"FLOAT16": np.float16, "FLOAT32": np.float32, "DOUBLE": np.float64}
_INTEGER_DTYPES = {"INT32": np.int32, "INT8": np.int8, "UINT8": np.uint8}


def require_compute_plan() -> None:
    """One line, before anything slow, where Core ML's compute plan cannot be read."""
    reason = compute_plan.unavailable_reason()
    if reason is not None:
        raise CoreMLUnavailableError(
            f"ane doctor {reason}.",
            "Run it on a Mac; `ane inspect PACKAGE` predicts the placement on any OS.",
        )


def _compile(package: Path, workdir: Path) -> Path:
    """``xcrun coremlcompiler`` where Xcode's tools are, else Core ML's own compiler
    (``coremltools.models.utils.compile_model``, no Xcode needed)."""
    if coreml_compile.can_compile():
        return coreml_compile.compile_package(package, workdir)
    ct = coremltools()
    target = workdir / coreml_compile.compiled_name(package)
    return Path(ct.models.utils.compile_model(str(package), destination_path=str(target)))


def _load(compiled: Path, compute_units: str) -> Any:
    ct = coremltools()
    return ct.models.CompiledMLModel(
        str(compiled), compute_units=getattr(ct.ComputeUnit, compute_units)
    )


def random_inputs(features: list[dict[str, Any]], seed: int = 0) -> dict[str, np.ndarray]:
    """An input of each declared (default) shape and dtype: floats from a standard normal,
    integers zero (an index every table has, so a lookup never reads out of range)."""
    rng = np.random.default_rng(seed)
    feed = {}
    for feature in features:
        dtype, shape = feature.get("dtype"), tuple(feature.get("shape") or ())
        if dtype in _NUMPY_DTYPES:
            feed[feature["name"]] = rng.standard_normal(shape).astype(_NUMPY_DTYPES[dtype])
        elif dtype in _INTEGER_DTYPES:
            feed[feature["name"]] = np.zeros(shape, _INTEGER_DTYPES[dtype])
        else:
            raise UsageError(
                f"ane doctor cannot make an input for {feature['name']!r} "
                f"({feature.get('kind')}, {dtype}).",
                "It feeds multi-array inputs only; time this model in Xcode instead.",
            )
    return feed


@dataclass(frozen=True)
class OpComparison:
    """One op: the predicted device (and the rule that decided) beside Core ML's choice."""

    op_type: str
    output: str
    predicted: str
    rule: str | None
    chosen: str | None  # None: the op is not in Core ML's plan
    cost: float | None

    @property
    def verdict(self) -> str:
        if self.chosen is None:
            return "not in plan"
        if self.predicted == UNKNOWN or self.chosen == UNKNOWN:
            return "unknown"
        if (self.predicted == ANE) == (self.chosen == ANE):
            return "agree"
        return "predicted ANE, chose off" if self.predicted == ANE else "predicted off, chose ANE"

    def to_dict(self) -> dict[str, Any]:
        return {
            "op_type": self.op_type,
            "output": self.output,
            "predicted": self.predicted,
            "rule": self.rule,
            "chosen": self.chosen,
            "cost": self.cost,
            "verdict": self.verdict,
        }


def _keyed(ops: list[Any]) -> list[tuple[str, str, int]]:
    """``(op type, first output, n)``: the n-th op of that type and output in program order
    (``n`` tells apart the ops without outputs, such as ``write_state``)."""
    seen: Counter[tuple[str, str]] = Counter()
    keys = []
    for op in ops:
        seen[(op.op_type, op.output)] += 1
        keys.append((op.op_type, op.output, seen[(op.op_type, op.output)]))
    return keys


def compare(placement: Placement, planned: list[PlannedOp]) -> list[OpComparison]:
    """Every predicted op in program order beside Core ML's choice for the same op: the
    plan names ops by type and first output, as the program does."""
    chosen = dict(zip(_keyed(planned), planned, strict=True))
    rows = []
    for key, op in zip(_keyed(placement.ops), placement.ops, strict=True):
        plan = chosen.get(key)
        rows.append(
            OpComparison(
                op_type=op.op_type,
                output=op.output,
                predicted=op.device,
                rule=op.rule,
                chosen=plan.device if plan is not None else None,
                cost=plan.cost if plan is not None else None,
            )
        )
    return rows


@dataclass
class DoctorReport:
    package: Path
    compute_units: str
    compile_seconds: float
    load_seconds: float
    first_predict_seconds: float
    predict_seconds: list[float]
    planned: list[PlannedOp]
    placement: Placement
    rows: list[OpComparison]

    @property
    def plan(self) -> dict[str, Any]:
        return summarize(self.planned)

    @property
    def chosen_switches(self) -> int:
        """Switches between the ANE and the rest in Core ML's plan, counted as the
        prediction's are (program order; weight decompression left out like constants)."""
        return count_switches(
            op.device for op in self.planned if not op.op_type.startswith("constexpr_")
        )

    def verdicts(self) -> dict[str, int]:
        return dict(Counter(row.verdict for row in self.rows).most_common())

    def to_dict(self) -> dict[str, Any]:
        return {
            "package": str(self.package),
            "compute_units": self.compute_units,
            "compile_seconds": self.compile_seconds,
            "load_seconds": self.load_seconds,
            "first_predict_seconds": self.first_predict_seconds,
            "predict_seconds": self.predict_seconds,
            "predict_median_seconds": statistics.median(self.predict_seconds),
            "compute_plan": self.plan,
            "chosen_switches_per_call": self.chosen_switches,
            "predicted": {
                "ops_by_device": self.placement.counts(),
                "switches_per_call": self.placement.switches,
                "switches_if_unknown_off": self.placement.switches_if_unknown_off,
            },
            "verdicts": self.verdicts(),
            "ops": [row.to_dict() for row in self.rows],
        }


class CoreMLFailedError(AneError):
    """Core ML itself refused the package: compiling, loading, planning or predicting."""


def _core_ml(step: str, package: Path, call: Callable[[], Any]) -> tuple[Any, float]:
    """``call()`` and its time in seconds; Core ML's failure as one line naming ``step``."""
    start = time.perf_counter()
    try:
        result = call()
    except AneError:
        raise
    except Exception as error:  # Core ML raises plain exceptions (RuntimeError, E5RT text)
        raise CoreMLFailedError(
            f"Core ML could not {step} {package.name}: {brief(error)}",
            "`ane inspect` shows what in the program may keep it off the ANE.",
        ) from error
    return result, time.perf_counter() - start


def diagnose(package: str | Path, *, runs: int = DEFAULT_RUNS) -> DoctorReport:
    """Compile, load with ``CPU_AND_NE``, plan, time ``runs`` predictions and compare."""
    if runs < 1:
        raise UsageError(f"--runs must be at least 1, not {runs}.", "Pass --runs 10, say.")
    require_compute_plan()
    package = Path(package)
    static = inspect_package(package, with_compute_plan=False)  # checks the package first
    feed = random_inputs(static.inputs)
    with tempfile.TemporaryDirectory(prefix="ane-doctor-") as workdir:
        compiled, compile_seconds = _core_ml(
            "compile", package, lambda: _compile(package, Path(workdir))
        )
        model, load_seconds = _core_ml("load", package, lambda: _load(compiled, COMPUTE_UNITS))
        planned, _ = _core_ml(
            "plan", package, lambda: compute_plan.plan_compiled(compiled, COMPUTE_UNITS)
        )
        state = model.make_state() if static.states else None

        def call() -> Any:
            return model.predict(feed) if state is None else model.predict(feed, state=state)

        _, first = _core_ml("run", package, call)
        seconds = [_core_ml("run", package, call)[1] for _ in range(runs)]
    return DoctorReport(
        package=package,
        compute_units=COMPUTE_UNITS,
        compile_seconds=compile_seconds,
        load_seconds=load_seconds,
        first_predict_seconds=first,
        predict_seconds=seconds,
        planned=planned,
        placement=static.placement,
        rows=compare(static.placement, planned),
    )


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:.2f} ms"


def render_doctor(report: DoctorReport) -> str:
    """The report as plain text: timings, coverage, the comparison and every op."""
    plan = report.plan
    devices = ", ".join(f"{d} {n}" for d, n in sorted(plan["ops_by_device"].items()))
    times = report.predict_seconds
    predicted = report.placement
    counts = predicted.counts()
    lines = [
        f"{report.package} with Core ML, compute units {report.compute_units}",
        f"  compile {_ms(report.compile_seconds)}, load {_ms(report.load_seconds)}; predict "
        f"median {_ms(statistics.median(times))} (min {_ms(min(times))}, {len(times)} runs "
        f"after a first of {_ms(report.first_predict_seconds)}; random inputs of the "
        "declared shapes)",
        f"Core ML's plan: {plan['ops']} ops ({devices}); ANE coverage "
        f"{100 * plan['ane_op_share']:.1f} % of ops, {100 * plan['ane_cost_share']:.1f} % of "
        f"estimated cost; {report.chosen_switches} device switches per call",
        f"Predicted (ane inspect): {counts['ane']} ANE, {counts['cpu-gpu']} likely CPU/GPU, "
        f"{counts['unknown']} unknown; {predicted.switches} device switches per call "
        f"({predicted.switches_if_unknown_off} if every unknown op ran off the ANE)",
        "Prediction against Core ML's choice: "
        + ", ".join(f"{verdict} {n}" for verdict, n in report.verdicts().items()),
    ]
    wrong = [row for row in report.rows if row.verdict.startswith("predicted")]
    if wrong:
        lines.append("  where they differ (op -> output: predicted [rule] / chosen):")
        lines += [
            f"    {row.op_type} -> {row.output}: {row.predicted} [{row.rule or 'no rule'}] / "
            f"{row.chosen}"
            for row in wrong
        ]
    lines.append("Every op (program order): op -> output: chosen device, estimated cost; predicted")
    for row in report.rows:
        cost = "?" if row.cost is None else f"{row.cost:.4f}"
        lines.append(
            f"  {row.op_type} -> {row.output}: {row.chosen or 'not in plan'}, {cost}; "
            f"{row.predicted} [{row.rule or 'no rule'}]"
        )
    return "\n".join(lines)
