"""The whole parity run: every component, then task outputs per compression; one report."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ane_core.architecture import Architecture
from ane_core.compress import NO_COMPRESSION, Compression
from ane_core.datatypes import NATIVE_LAYOUT
from ane_core.executor.coreml import parse_compute_units, require_macos
from ane_core.executor.run import check_backend
from ane_core.export import package_path, resolve_components
from ane_core.parity.component import component_parity
from ane_core.parity.layout import check_layout_settings, layout_parity
from ane_core.parity.rows import ParityRow
from ane_core.parity.task_outputs import TaskOutputRow, compare_task_outputs
from ane_core.progress import Reporter
from ane_core.targets import DEFAULT_TARGET, Precision, parse_target

DEFAULT_MIN_PSNR = {Precision.FP32: 90.0, Precision.FP16: 35.0}
"""Floors against the FP32 reference: FP32 exports >= 90 dB, FP16 >= 35 dB (Apple's
ml-stable-diffusion and whisperkittools hold 35 dB for FP16)."""


def default_backends() -> tuple[str, ...]:
    """The reference executor everywhere, and Core ML itself on macOS."""
    return ("mil", "coreml") if sys.platform == "darwin" else ("mil",)


@dataclass
class ParityReport:
    """Everything one parity run compared; :attr:`passed` when every row met its floor."""

    architecture: str
    size: str | None
    weights: str
    """The weight source, as the architecture describes it."""
    files: list[str]
    min_psnr: dict[Precision, float]
    min_psnr_compressed: float | None
    compressions: list[str]
    rows: list[ParityRow] = field(default_factory=list)
    task_rows: list[TaskOutputRow] = field(default_factory=list)
    layout: str = NATIVE_LAYOUT

    @property
    def failed(self) -> list[ParityRow]:
        return [row for row in self.rows if not row.passed]

    @property
    def passed(self) -> bool:
        return not self.failed

    def to_json(self) -> dict[str, Any]:
        """What ``ane parity --json`` writes."""
        return {
            "architecture": self.architecture,
            "layout": self.layout,
            "size": self.size,
            "weights": self.weights,
            "inputs": list(self.files),
            "min_psnr_db": {p.value: v for p, v in self.min_psnr.items()},
            "min_psnr_compressed_db": self.min_psnr_compressed,
            "compressions": self.compressions,
            "passed": self.passed,
            "rows": [r.as_json() for r in self.rows],
            "task_outputs": [r.as_json() for r in self.task_rows],
        }


def check_settings(
    arch: Architecture,
    *,
    components: Sequence[str] | None,
    precisions: Sequence[Precision],
    backends: Sequence[str] | None,
    compute_units: str,
    target: str,
) -> tuple[list[str], list[Precision], tuple[str, ...]]:
    """Check the settings of a parity run before anything slow (loading weights, say) and
    return the components, precisions and backends it will use, duplicates dropped. Bad
    values are one-line :class:`~ane_core.errors.UsageError`\\ s."""
    precisions = list(dict.fromkeys(precisions))
    for precision in precisions:
        parse_target(target, precision=precision)
    backends = tuple(dict.fromkeys(backends or default_backends()))
    for backend in backends:
        check_backend(backend)
    parse_compute_units(compute_units)
    if "coreml" in backends:
        require_macos()
    names = resolve_components(arch, "all") if components is None else list(components)
    for name in names:
        resolve_components(arch, name)
    return names, precisions, backends


def check_parity(
    arch: Architecture,
    *,
    weights: Any,
    size: str | None = None,
    files: Sequence[str] = (),
    components: Sequence[str] | None = None,
    precisions: Sequence[Precision] = (Precision.FP32, Precision.FP16),
    backends: Sequence[str] | None = None,
    compute_units: str = "all",
    target: str = DEFAULT_TARGET,
    min_psnr: dict[Precision, float] | None = None,
    compressions: Sequence[Compression] = (NO_COMPRESSION,),
    min_psnr_compressed: float | None = None,
    packages_dir: Path | None = None,
    build_options: dict[str, Any] | None = None,
    reporter: Reporter | None = None,
    layout: str = NATIVE_LAYOUT,
) -> ParityReport:
    """Compare ``arch``'s reference, ANE module and exported packages (see
    :mod:`ane_core.parity`); ``weights`` come from ``arch.load_weights``.

    ``components`` None: every one. ``backends`` None: :func:`default_backends`. Packages go to
    ``packages_dir`` (overwritten) or a temporary directory removed afterwards. A compressed
    setting brings the uncompressed one along as the baseline of the task-output table.
    Settings are checked first (:func:`check_settings`). ``layout`` other than ``native``:
    the layout's packages against their references instead of the components
    (:func:`~ane_core.parity.layout.layout_parity`; ``components`` and compression do not
    apply).
    """
    if layout != NATIVE_LAYOUT:
        check_layout_settings(layout, compressions=compressions)
    names, precisions, backends = check_settings(
        arch,
        components=components,
        precisions=precisions,
        backends=backends,
        compute_units=compute_units,
        target=target,
    )
    compressions = tuple(dict.fromkeys(compressions)) or (NO_COMPRESSION,)
    if any(c.enabled for c in compressions) and NO_COMPRESSION not in compressions:
        compressions = (NO_COMPRESSION, *compressions)  # the baseline for task outputs
    report = ParityReport(
        architecture=arch.name,
        size=size,
        weights=getattr(weights, "source", ""),
        files=[str(f) for f in files],
        min_psnr={**DEFAULT_MIN_PSNR, **(min_psnr or {})},
        min_psnr_compressed=min_psnr_compressed,
        compressions=[c.name for c in compressions],
        layout=layout,
    )
    with tempfile.TemporaryDirectory(prefix="ane-parity-") as scratch:
        target_dir = Path(packages_dir) if packages_dir else Path(scratch)
        target_dir.mkdir(parents=True, exist_ok=True)
        common = {
            "size": size,
            "weights": weights,
            "files": report.files,
            "precisions": precisions,
            "backends": backends,
            "compute_units": compute_units,
            "target": target,
            "min_psnr": report.min_psnr,
            "packages_dir": target_dir,
            "build_options": dict(build_options or {}),
            "reporter": reporter,
        }
        if layout != NATIVE_LAYOUT:
            report.rows = layout_parity(arch, layout, **common)
            return report
        for name in names:
            report.rows += component_parity(
                arch,
                name,
                compressions=compressions,
                min_psnr_compressed=min_psnr_compressed,
                **common,
            )
        if set(names) == set(arch.components()):  # the whole task needs every package

            def packages_for(precision: Precision, compression: Compression) -> dict[str, Path]:
                return {
                    name: package_path(
                        arch,
                        target_dir,
                        size=size,
                        component=name,
                        variant="ane",
                        precision=precision,
                        compression=compression,
                        build_options=common["build_options"],
                    )
                    for name in names
                }

            report.task_rows = compare_task_outputs(
                arch,
                weights,
                report.files,
                precisions,
                compressions,
                packages_for,
                common["build_options"],
            )
    return report
