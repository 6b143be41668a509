"""Inspect a saved ``.mlpackage``: one report (JSON-ready) and a one-line summary.

Why a plain dict at the end: the same report is printed by ``ane inspect``, written beside
every export as ``<name>.inspect.json`` and read by benchmarks; a dict of plain values is
what all three need, and JSON keeps it readable without this package installed.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ane_core.errors import OutputError, PackageError
from ane_core.inspect.census import (
    deployment_targets,
    describe_feature,
    describe_metadata,
    input_flexibility,
    largest_tensors,
    op_census,
)
from ane_core.inspect.compute_plan import compute_plan
from ane_core.inspect.cost import Cost, estimate_cost
from ane_core.inspect.duplicates import duplicate_weights
from ane_core.inspect.placement import Placement, predict_placement
from ane_core.inspect.program import Program, read_program
from ane_core.inspect.rules import RULES, Finding, run_rules
from ane_core.inspect.traffic import CallTraffic, call_traffic
from ane_core.package_check import CheckedPackage, FileDigest, check_package, verify_digests

REPORT_SUFFIX = ".inspect.json"


@dataclass
class InspectionReport:
    """Everything ``ane inspect`` knows about one package."""

    path: Path
    specification_version: int
    deployment_targets: list[str]
    opsets: dict[str, str]
    precision: str | None
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    metadata: dict[str, Any]
    op_census: Counter[str]
    largest_tensors: list[dict[str, Any]]
    findings: list[Finding]
    cost: Cost
    traffic: CallTraffic
    placement: Placement
    """Predicted device of every op and the device switches per call (placement_rules.json)."""
    states: list[dict[str, Any]] = field(default_factory=list)
    compute_plan: dict[str, Any] = field(default_factory=dict)
    package_check: dict[str, Any] = field(default_factory=dict)
    """What :func:`~ane_core.package_check.check_package` found in order (weight files)."""
    digests: list[FileDigest] | None = None
    """Every file's SHA-256 beside the recorded one (``verify=True``), else ``None``."""

    def findings_by_rule(self) -> Counter[str]:
        return Counter(f.rule for f in self.findings)

    def count(self, rule: str) -> int:
        return self.findings_by_rule().get(rule, 0)

    def summary_line(self) -> str:
        """One line: the findings per rule, or that there are none, plus cost and traffic."""
        cost = (
            f"{self.cost.flops / 1e9:.2f} GFLOPs, {self.cost.weight_bytes / 2**20:.1f} MiB weights; "
            f"{self.traffic.summary()}; predicted: {self.placement.counts()['cpu-gpu']} ops off "
            f"the ANE, {self.placement.switches} device switches per call"
        )
        by_rule = self.findings_by_rule()
        if not by_rule:
            return f"ANE check: no findings ({cost})"
        parts = ", ".join(f"{by_rule[r.id]} {r.title}" for r in RULES if r.id in by_rule)
        total = len(self.findings)
        return f"ANE check: {total} finding{'s' if total != 1 else ''}: {parts} ({cost})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "specification_version": self.specification_version,
            "deployment_targets": self.deployment_targets,
            "opsets": self.opsets,
            "precision": self.precision,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "states": self.states,
            "metadata": self.metadata,
            "op_census": dict(self.op_census.most_common()),
            "largest_tensors": self.largest_tensors,
            "findings_by_rule": {r.id: self.count(r.id) for r in RULES},
            "findings": [f.to_dict() for f in self.findings],
            "cost": {**self.cost.to_dict(), **self.traffic.to_dict()},
            "placement": self.placement.to_dict(),
            "compute_plan": self.compute_plan,
            "package_check": self.package_check,
            "verified": None if self.digests is None else [d.to_dict() for d in self.digests],
            "rules": [
                {"id": r.id, "title": r.title, "effect": r.effect, "reason": r.reason}
                for r in RULES
            ],
            "summary": self.summary_line(),
        }


def program_precision(program: Program, metadata: dict[str, Any]) -> str | None:
    """``fp16`` or ``fp32``: the export's declared precision (``ane.precision``), else fp16
    when any op computes in float16, fp32 when float ops compute only in float32, else None."""
    declared = metadata.get("user_defined", {}).get("ane.precision")
    if declared in ("fp16", "fp32"):
        return declared
    dtypes = {t.dtype for op in program.operations if not op.is_const for t in op.outputs}
    if dtypes & {"FLOAT16", "BFLOAT16"}:
        return "fp16"
    if dtypes & {"FLOAT32", "FLOAT64"}:
        return "fp32"
    return None


def inspect_package(
    path: str | Path, *, with_compute_plan: bool = True, verify: bool = False
) -> InspectionReport:
    """Read ``path`` (an ``.mlpackage``) and check it against every rule.

    The package is checked first (:func:`~ane_core.package_check.check_package`: manifest,
    spec, every weight blob's header against its file), so a damaged package is a
    :class:`~ane_core.errors.PackageError`, never a report. ``verify=True`` also reads every
    byte of every file and compares its SHA-256 with the one the export recorded (a
    mismatch is a ``PackageError`` too). ``with_compute_plan=False`` skips Core ML's plan
    (slow on a Mac; off macOS it is only a one-line note either way).
    """
    path = Path(path)
    checked: CheckedPackage = check_package(path)
    spec = checked.spec
    digests = verify_digests(checked) if verify else None
    try:
        program = read_program(spec)
    except ValueError as error:
        raise PackageError(f"{path}: {error}.", "`ane inspect` reads ML programs only.") from None
    metadata = describe_metadata(spec)
    precision = program_precision(program, metadata)
    flexibility = input_flexibility(spec)
    findings = [
        finding
        for function in program.functions
        for finding in run_rules(function, precision=precision, flexibility=flexibility)
    ]
    findings += duplicate_weights(checked)
    inputs = [describe_feature(f) for f in spec.description.input]
    outputs = [describe_feature(f) for f in spec.description.output]
    states = [describe_feature(f) for f in spec.description.state]
    cost = estimate_cost(program, path)
    return InspectionReport(
        path=path,
        specification_version=spec.specificationVersion,
        deployment_targets=deployment_targets(spec.specificationVersion),
        opsets={f.name: f.opset for f in program.functions},
        precision=precision,
        inputs=inputs,
        outputs=outputs,
        states=states,
        metadata=metadata,
        op_census=op_census(spec),
        largest_tensors=largest_tensors(program),
        findings=findings,
        cost=cost,
        traffic=call_traffic(
            inputs,
            outputs,
            states,
            matmul_flops=cost.matmul_flops,
            weight_bytes=cost.weight_bytes,
            metadata=metadata,
        ),
        compute_plan=compute_plan(path)
        if with_compute_plan
        else {"available": False, "reason": "not requested"},
        placement=predict_placement(program, flexibility=flexibility),
        package_check=checked.to_dict(),
        digests=digests,
    )


def report_path(package: str | Path) -> Path:
    """Where the JSON report of ``package`` goes: ``NAME.inspect.json`` beside it."""
    package = Path(package)
    return package.with_name(package.stem + REPORT_SUFFIX)


def write_report(report: InspectionReport, target: str | Path | None = None) -> Path:
    """Write ``report`` as JSON (default: beside its package), atomically: a temporary file
    in the same directory is renamed into place, so readers never see half a report."""
    target = Path(target) if target is not None else report_path(report.path)
    text = json.dumps(report.to_dict(), indent=2) + "\n"
    try:
        fd, tmp = tempfile.mkstemp(prefix=".ane-tmp-", suffix=".json", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise OutputError(
            f"could not write {target}: {error.strerror or error}.",
            "Free disk space or pick another directory with -o.",
        ) from error
    return target
