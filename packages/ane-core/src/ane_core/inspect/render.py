"""The human-readable form of an :class:`~ane_core.inspect.report.InspectionReport`.

Why a separate module: ``ane inspect`` prints this, other commands print only the summary
line, and the JSON form needs none of it.
"""

from __future__ import annotations

from typing import Any

from ane_core.inspect.report import InspectionReport
from ane_core.inspect.rules import RULES

MAX_FINDINGS_PER_RULE = 20


def _bytes(n: int | float | None) -> str:
    if n is None:
        return "?"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def _flops(n: int) -> str:
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}FLOPs"
    return f"{n} FLOPs"


def _feature(entry: dict[str, Any]) -> str:
    if "dtype" in entry:
        shape = "x".join(str(d) for d in entry.get("shape", []))
        text = f"{entry['name']}: {entry['dtype']} ({shape})"
        if "flexibility" in entry:
            detail = entry.get("flexible_shapes") or entry.get("shape_range")
            text += f", {entry['flexibility']} shape {detail}"
    else:
        text = f"{entry['name']}: {entry['kind']}"
    if entry.get("description"):
        text += f"  {entry['description']}"
    return text


def _findings(report: InspectionReport) -> list[str]:
    if not report.findings:
        return ["Findings: none"]
    lines = [f"Findings: {len(report.findings)}"]
    for rule in RULES:
        found = [f for f in report.findings if f.rule == rule.id]
        if not found:
            continue
        lines.append(f"  {rule.title} [{rule.id}, {rule.effect}]: {len(found)}")
        lines.append(f"    why: {rule.reason}")
        for finding in found[:MAX_FINDINGS_PER_RULE]:
            where = "program" if finding.op_type is None else f"{finding.op_type} {finding.op_name}"
            shown = finding.tensor not in (None, finding.op_name)
            tensor = f" -> {finding.tensor}" if shown else ""
            lines.append(f"    - {where}{tensor}: {finding.detail}")
        if len(found) > MAX_FINDINGS_PER_RULE:
            lines.append(f"    ... and {len(found) - MAX_FINDINGS_PER_RULE} more (see --json)")
    return lines


def _placement(report: InspectionReport) -> list[str]:
    placement = report.placement
    lines = [f"Predicted placement (published rules, {placement.table.origin})"]
    lines.append(f"  {placement.summary()}")
    off = [op for op in placement.ops if op.device != "ane"]
    for rule_id, count in placement.by_rule().most_common():
        shown = [op for op in off if (op.rule or "(no rule)") == rule_id]
        device = shown[0].device
        lines.append(f"  {rule_id} [{device}]: {count}")
        if rule_id == "(no rule)":
            lines.append("    why: no row of the table names these op types")
        else:
            rule = placement.table.rule(rule_id)
            lines.append(f"    why: {rule.claim}")
            lines.append(f"    source: {'; '.join(s.name for s in rule.sources)}")
        for op in shown[:MAX_FINDINGS_PER_RULE]:
            lines.append(f"    - {op.op_type} -> {op.output}")
        if len(shown) > MAX_FINDINGS_PER_RULE:
            lines.append(f"    ... and {len(shown) - MAX_FINDINGS_PER_RULE} more (see --json)")
    return lines


def _compute_plan(plan: dict[str, Any]) -> list[str]:
    if not plan.get("available"):
        return [f"Compute plan: {plan.get('reason', 'unavailable')}"]
    devices = ", ".join(f"{d} {n}" for d, n in sorted(plan["ops_by_device"].items()))
    lines = [
        f"Compute plan (Core ML): {plan['ops']} ops ({devices}); "
        f"on the ANE: {100 * plan['ane_op_share']:.1f} % of ops, "
        f"{100 * plan['ane_cost_share']:.1f} % of estimated cost",
    ]
    for op in plan["off_ane"][:MAX_FINDINGS_PER_RULE]:
        lines.append(f"  - {op['op_type']} -> {op['output']}: {op['device']}")
    return lines


_DIGEST_STATUS = {
    "matches": "matches the sha256 recorded at export",
    "not recorded": "nothing recorded to compare against",
}


def _package_check(report: InspectionReport) -> list[str]:
    files = report.package_check.get("weight_files", [])
    blobs = sum(f["blobs"] for f in files)
    where = ", ".join(f"{f['path']} {_bytes(f['bytes'])}" for f in files) or "no weight file"
    lines = [
        f"Package check: manifest, model spec and {blobs} weight blob headers in order ({where})"
    ]
    if report.digests is None:
        lines.append("  contents not verified (--verify reads every file and compares its sha256)")
    for digest in report.digests or []:
        status = _DIGEST_STATUS.get(digest.status, digest.status)
        lines.append(f"  {digest.path}: sha256 {digest.sha256} ({status})")
    return lines


def render_text(report: InspectionReport) -> str:
    """The full report as indented plain text."""
    opsets = ", ".join(f"{name}: {opset}" for name, opset in report.opsets.items())
    lines = [
        str(report.path),
        f"  ML program, specification version {report.specification_version} "
        f"(deployment target {' / '.join(report.deployment_targets) or '?'} or newer); "
        f"opset {opsets}; precision {report.precision or '?'}",
        "Inputs",
        *(f"  {_feature(f)}" for f in report.inputs),
        "Outputs",
        *(f"  {_feature(f)}" for f in report.outputs),
        *(["States (kept inside between calls)"] if report.states else []),
        *(f"  {_feature(f)}" for f in report.states),
        "Metadata",
    ]
    meta = report.metadata
    for key in ("short_description", "author", "license", "version"):
        if meta.get(key):
            lines.append(f"  {key}: {meta[key]}")
    lines.extend(f"  {k}: {v}" for k, v in meta.get("user_defined", {}).items())
    total_ops = sum(report.op_census.values())
    census = ", ".join(f"{t} {n}" for t, n in report.op_census.most_common())
    lines += [f"Op census ({total_ops} ops)", f"  {census}", "Largest tensors"]
    for row in report.largest_tensors:
        shape = "x".join("?" if d is None else str(d) for d in row["shape"] or [])
        lines.append(
            f"  {_bytes(row['bytes']):>10}  {row['dtype']} ({shape})  {row['op_type']} -> "
            f"{row['name']}"
        )
    lines += _findings(report)
    cost = report.cost
    top = ", ".join(f"{t} {_flops(n)}" for t, n in cost.flops_by_op_type.most_common(5))
    note = " (flexible dimensions counted as 1)" if cost.flexible else ""
    lines += [
        "Cost per inference (estimated from shapes)",
        f"  {_flops(cost.flops)}{note}; matrix ops {_flops(cost.matmul_flops)}; top: {top}",
        f"  weights {_bytes(cost.weight_bytes)} ({_bytes(cost.weight_file_bytes)} in the weight "
        f"file, {_bytes(cost.weight_file_on_disk)} on disk)",
        f"  {report.traffic.summary()} (counts only: time needs Core ML on a Mac)",
    ]
    lines += _package_check(report)
    lines += _placement(report)
    lines += _compute_plan(report.compute_plan)
    lines.append(report.summary_line())
    return "\n".join(lines)
