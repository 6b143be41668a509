"""Which device Core ML actually plans for each op (macOS 14.4+ only).

Why both this and the rules: the rules say what is known to keep work off the ANE; Core ML's
``MLComputePlan`` is the ground truth for one OS release and one machine, but exists only on
macOS 14.4 and newer. Off macOS the report says so instead of guessing.
"""

from __future__ import annotations

import platform
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ane_core._coremltools import coremltools

MIN_MACOS = (14, 4)
NEEDS_MAC = "needs macOS 14.4+ (Core ML's MLComputePlan)"


@dataclass(frozen=True)
class PlannedOp:
    """One op of the plan: its type, first output, preferred device and relative cost."""

    op_type: str
    output: str
    device: str  # "ane", "gpu", "cpu" or "unknown"
    cost: float | None


def unavailable_reason() -> str | None:
    """Why the compute plan cannot be read here, or ``None`` when it can."""
    if platform.system() != "Darwin":
        return f"{NEEDS_MAC}; this is {platform.system() or 'an unknown OS'}"
    release = platform.mac_ver()[0]
    try:
        version = tuple(int(part) for part in release.split(".")[:2])
    except ValueError:
        return f"{NEEDS_MAC}; cannot read the macOS version {release!r}"
    if version < MIN_MACOS:
        return f"{NEEDS_MAC}; this is macOS {release}"
    return None


def summarize(ops: Iterable[PlannedOp]) -> dict[str, Any]:
    """Share of ops and of estimated cost per device, and the ops planned off the ANE."""
    ops = list(ops)
    counts: dict[str, int] = {}
    costs: dict[str, float] = {}
    for op in ops:
        counts[op.device] = counts.get(op.device, 0) + 1
        costs[op.device] = costs.get(op.device, 0.0) + (op.cost or 0.0)
    total_cost = sum(costs.values())
    return {
        "available": True,
        "ops": len(ops),
        "ops_by_device": counts,
        "ane_op_share": counts.get("ane", 0) / len(ops) if ops else 0.0,
        "ane_cost_share": costs.get("ane", 0.0) / total_cost if total_cost else 0.0,
        "cost_by_device": costs,
        "off_ane": [
            {"op_type": op.op_type, "output": op.output, "device": op.device, "cost": op.cost}
            for op in ops
            if op.device != "ane"
        ],
    }


def _device_name(device: Any) -> str:
    from coremltools.models import compute_device

    for cls, name in (
        (compute_device.MLNeuralEngineComputeDevice, "ane"),
        (compute_device.MLGPUComputeDevice, "gpu"),
        (compute_device.MLCPUComputeDevice, "cpu"),
    ):
        if isinstance(device, cls):
            return name
    return "unknown"


def _walk(block: Any) -> Iterator[Any]:
    for op in block.operations:
        yield op
        for inner in op.blocks:
            yield from _walk(inner)


def plan_compiled(compiled: str | Path, compute_units: str = "ALL") -> list[PlannedOp]:
    """Core ML's plan for a compiled model (``.mlmodelc``) under ``compute_units`` (a
    ``coremltools.ComputeUnit`` member name): every op but constants, in program order."""
    ct = coremltools()
    from coremltools.models.compute_plan import MLComputePlan

    plan = MLComputePlan.load_from_path(
        str(compiled), compute_units=getattr(ct.ComputeUnit, compute_units)
    )
    program = plan.model_structure.program
    if program is None:
        return []
    planned = []
    for function in program.functions.values():
        for op in _walk(function.block):
            if op.operator_name == "const":
                continue
            usage = plan.get_compute_device_usage_for_mlprogram_operation(op)
            cost = plan.get_estimated_cost_for_mlprogram_operation(op)
            planned.append(
                PlannedOp(
                    op_type=op.operator_name,
                    output=op.outputs[0].name if op.outputs else "",
                    device=_device_name(usage.preferred_compute_device) if usage else "unknown",
                    cost=cost.weight if cost is not None else None,
                )
            )
    return planned


def _planned_ops(package: Path) -> list[PlannedOp]:
    ct = coremltools()
    with tempfile.TemporaryDirectory(prefix="ane-plan-") as workdir:
        compiled = ct.models.utils.compile_model(
            str(package), destination_path=str(Path(workdir) / "model.mlmodelc")
        )
        return plan_compiled(compiled)


def compute_plan(package: Path) -> dict[str, Any]:
    """The plan summary on macOS 14.4+, else ``{"available": False, "reason": ...}``."""
    reason = unavailable_reason()
    if reason is not None:
        return {"available": False, "reason": reason}
    try:
        return summarize(_planned_ops(Path(package)))
    except Exception as error:  # Core ML's own failure; the static report still stands
        return {"available": False, "reason": f"Core ML could not plan the model: {error}"}
