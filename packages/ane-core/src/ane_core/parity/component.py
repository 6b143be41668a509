"""Every comparison for one component: reference, ANE module and exported packages."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ane_core.architecture import Architecture
from ane_core.compress import NO_COMPRESSION, Compression
from ane_core.datatypes import ParityCase
from ane_core.errors import UsageError
from ane_core.executor import load_program
from ane_core.export import export_component
from ane_core.package_size import bytes_on_disk
from ane_core.parity.rows import ParityRow, compare, module_outputs, package_outputs
from ane_core.progress import Reporter, SilentReporter
from ane_core.targets import Precision, parse_target


def _check_cases(component: str, reference: list[ParityCase], ane: list[ParityCase]) -> None:
    if [c.name for c in reference] != [c.name for c in ane]:
        raise UsageError(
            f"parity inputs of {component!r} differ between variants: "
            f"{[c.name for c in reference]} vs {[c.name for c in ane]}.",
            "The architecture's parity_inputs must give every variant the same cases.",
        )


def component_parity(
    arch: Architecture,
    component: str,
    *,
    size: str | None,
    weights: Any,
    files: Sequence[str],
    precisions: Sequence[Precision],
    backends: Sequence[str],
    compute_units: str,
    target: str,
    min_psnr: dict[Precision, float],
    packages_dir: Path,
    build_options: dict[str, Any],
    reporter: Reporter | None = None,
    compressions: Sequence[Compression] = (NO_COMPRESSION,),
    min_psnr_compressed: float | None = None,
) -> list[ParityRow]:
    """Every comparison for one component (see :mod:`ane_core.parity`): the ANE PyTorch
    module in FP32, then each exported package (written to ``packages_dir``, overwriting)
    per precision, compression and backend, all against the reference on the same cases."""
    reference = arch.reference(component, weights, **build_options)
    ane = arch.build(component, "ane", weights, **build_options)
    reference_cases = arch.parity_inputs(component, "stock", weights, files, **build_options)
    ane_cases = arch.parity_inputs(component, "ane", weights, files, **build_options)
    _check_cases(component, reference_cases, ane_cases)
    names = [spec.name for spec in reference.outputs]
    expected = [module_outputs(reference.module, case.inputs) for case in reference_cases]
    rows: list[ParityRow] = []
    for case, want in zip(ane_cases, expected, strict=True):
        got = arch.to_reference_layout(component, "ane", module_outputs(ane.module, case.inputs))
        rows += compare(
            want,
            got,
            names,
            component=component,
            case=case.name,
            model="ane-pytorch",
            precision="fp32",
            min_psnr_db=min_psnr[Precision.FP32],
        )
    ane.module = None  # the exports below build their own copy
    for precision in precisions:
        for compression in compressions:
            result = export_component(
                arch,
                size=size,
                component=component,
                variant="ane",
                weights=weights,
                precision=precision,
                target=parse_target(target, precision=precision),
                output_dir=packages_dir,
                force=True,
                reporter=reporter or SilentReporter(),
                build_options=build_options,
                compression=compression,
            )
            size_on_disk = bytes_on_disk(result.path)
            floor = min_psnr_compressed if compression.enabled else min_psnr[precision]
            for backend in backends:
                program = load_program(result.path, backend=backend, compute_units=compute_units)
                for case, want in zip(ane_cases, expected, strict=True):
                    raw = package_outputs(program, ane, case.inputs, precision)
                    got = arch.to_reference_layout(component, "ane", raw)
                    rows += compare(
                        want,
                        got,
                        names,
                        component=component,
                        case=case.name,
                        model=f"package-{backend}",
                        precision=precision.value,
                        min_psnr_db=floor,
                        compression=compression.name,
                        package_bytes=size_on_disk,
                    )
    return rows
