"""Parity of an app layout (``ane parity ARCH --layout NAME``): each of its packages against
its reference, on the same real inputs.

Why simpler than the native comparison: a layout package and its reference share their I/O
(:class:`~ane_core.datatypes.LayoutPackage`: the reference computes the app's outputs the
original way), so the same cases feed both and outputs compare element-wise as they come.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ane_core.architecture import Architecture
from ane_core.errors import UsageError
from ane_core.executor import load_program
from ane_core.layout_export import export_layout
from ane_core.package_size import bytes_on_disk
from ane_core.parity.rows import ParityRow, compare, module_outputs, package_outputs
from ane_core.progress import Reporter, SilentReporter
from ane_core.targets import Precision, parse_target


def layout_parity(
    arch: Architecture,
    layout: str,
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
) -> list[ParityRow]:
    """Every package of ``layout``: its ANE PyTorch module (FP32), then the exported layout
    at each precision (written to ``packages_dir/LAYOUT-PRECISION``, overwriting) through
    each backend, all against the package's reference on the architecture's
    :meth:`~Architecture.layout_parity_inputs`."""
    plan = arch.layout_plan(layout, size=size, name=None, checkpoint=None, **build_options)
    rows: list[ParityRow] = []
    models, cases, expected = {}, {}, {}
    for package in plan.packages:
        reference = package.reference(weights)
        cases[package.name] = arch.layout_parity_inputs(
            layout, package.name, weights, files, **build_options
        )
        expected[package.name] = [
            module_outputs(reference.module, c.inputs) for c in cases[package.name]
        ]
        del reference
        model = package.build(weights)
        names = [spec.name for spec in model.outputs]
        for case, want in zip(cases[package.name], expected[package.name], strict=True):
            rows += compare(
                want,
                module_outputs(model.module, case.inputs),
                names,
                component=package.name,
                case=case.name,
                model="ane-pytorch",
                precision="fp32",
                min_psnr_db=min_psnr[Precision.FP32],
            )
        model.module = None  # only the specs are needed below
        models[package.name] = model
    for precision in precisions:
        exported = export_layout(
            arch,
            plan,
            size=size,
            weights=weights,
            precision=precision,
            target=parse_target(target, precision=precision),
            output_dir=Path(packages_dir) / f"{layout}-{precision.value}",
            force=True,
            reporter=reporter or SilentReporter(),
            compile_models=False,
        )
        for package, result in zip(plan.packages, exported.packages, strict=True):
            model = models[package.name]
            names = [spec.name for spec in model.outputs]
            size_on_disk = bytes_on_disk(result.path)
            for backend in backends:
                program = load_program(result.path, backend=backend, compute_units=compute_units)
                for case, want in zip(cases[package.name], expected[package.name], strict=True):
                    rows += compare(
                        want,
                        package_outputs(program, model, case.inputs, precision),
                        names,
                        component=package.name,
                        case=case.name,
                        model=f"package-{backend}",
                        precision=precision.value,
                        min_psnr_db=min_psnr[precision],
                        package_bytes=size_on_disk,
                    )
    return rows


def check_layout_settings(layout: str, *, compressions: Sequence[Any]) -> None:
    """What a layout check cannot do, refused in one line before anything slow."""
    if any(getattr(c, "enabled", False) for c in compressions):
        raise UsageError(
            f"--compress checks the native layout only, not --layout {layout}.",
            "Drop --compress, or check the native layout.",
        )
