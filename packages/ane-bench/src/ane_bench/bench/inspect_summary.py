"""The ``ane inspect`` figures a benchmark row carries: op counts, findings, FLOPs, and per
call the multiply-adds, weight bytes and bytes moved in and out (states apart).

Why a summary and not the whole report: results.json is read by people comparing rows; the
full per-op report is what ``ane inspect`` (or the ``.inspect.json`` beside a package) is for.
Core ML's compute plan is left to :mod:`ane_bench.bench.coreml`, which measures on macOS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ane_core.inspect import inspect_package


def summarize_package(path: str | Path) -> dict[str, Any]:
    """Op counts, findings per rule, estimated FLOPs and weight bytes of a saved package."""
    report = inspect_package(path, with_compute_plan=False)
    return {
        "ops": sum(report.op_census.values()),
        "op_counts": dict(report.op_census.most_common()),
        "findings": len(report.findings),
        "findings_by_rule": {
            rule: count for rule, count in report.findings_by_rule().most_common()
        },
        "flops": report.cost.flops,
        "matmul_flops": report.cost.matmul_flops,
        "weight_bytes": report.cost.weight_bytes,
        **report.traffic.to_dict(),  # per call: MACs, weight bytes, bytes in and out, state
        "summary": report.summary_line(),
    }
