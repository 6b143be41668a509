"""Export an app layout (``ane export ARCH --layout NAME``): every package and file it needs.

Why here and not in the plugin: staging, conversion, metadata, compiling on a Mac and the
one-line errors are the same for any app an architecture targets; the plugin only says what
the app expects (:meth:`Architecture.layout_plan`: packages, their folder, the files beside
them). ``native`` is not a plan: it is :func:`ane_core.export.export_component` per
component, unchanged.

Everything is written inside one staging directory and published at the end (the root
folder whole, or the single package with its compiled ``.mlmodelc``), so a failure or
Ctrl-C leaves nothing half-written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ane_core.architecture import Architecture, Layout, LayoutPackage, LayoutPlan
from ane_core.coreml_compile import (
    can_compile,
    compile_command,
    compile_package,
    compiled_name,
    shell_line,
)
from ane_core.datatypes import NATIVE_LAYOUT
from ane_core.errors import UsageError
from ane_core.export import ExportResult, convert_model, result_metadata
from ane_core.memory import release_freed_memory
from ane_core.metadata import PREFIX
from ane_core.mil import op_counts
from ane_core.package_check import record_digests
from ane_core.progress import Reporter, SilentReporter, timed_phase
from ane_core.save import check_target, staging
from ane_core.targets import Precision, parse_precision


def find_layout(architecture: Architecture, name: str) -> Layout:
    """The architecture's layout called ``name``, or a one-line error listing them."""
    layouts = {layout.name: layout for layout in architecture.layouts()}
    if name not in layouts:
        raise UsageError(
            f"{architecture.name} has no --layout {name!r}.", f"Use one of: {', '.join(layouts)}."
        )
    return layouts[name]


def layout_precisions(layout: Layout, values: Sequence[str]) -> list[Precision]:
    """``--precision`` values for ``layout`` (none given: its default for an export, all it
    accepts for a check), each refused in one line if the layout does not take it."""
    chosen = list(values) or [layout.default_precision]
    precisions = [parse_precision(value) for value in chosen]
    for precision in precisions:
        if precision.value not in layout.precisions:
            note = f" ({layout.precision_note})" if layout.precision_note else ""
            raise UsageError(
                f"--layout {layout.name} does not take --precision {precision.value}{note}.",
                f"Use --precision {' or '.join(layout.precisions)}.",
            )
    return precisions


def compiled_outputs(plan: LayoutPlan) -> list[str]:
    """Top-level ``.mlmodelc`` an export of ``plan`` adds when it compiles (a plan without a
    root compiles its package beside it; a root holds its compiled models)."""
    return [] if plan.root is not None else [compiled_name(plan.packages[0].path)]


def plan_layout(
    architecture: Architecture,
    layout: str,
    *,
    size: str | None,
    name: str | None,
    checkpoint: str | None,
    output_dir: Path,
    force: bool = False,
    build_options: dict[str, Any] | None = None,
) -> LayoutPlan:
    """The plan of ``layout``, with every path it will write checked (before any weights
    load): a one-line error if one exists (without ``force``) or cannot be written."""
    if layout == NATIVE_LAYOUT:
        raise ValueError("the native layout exports component by component, not from a plan")
    find_layout(architecture, layout)
    plan = architecture.layout_plan(
        layout, size=size, name=name, checkpoint=checkpoint, **dict(build_options or {})
    )
    extra = compiled_outputs(plan) if can_compile() else []
    for output in [*plan.outputs, *extra]:
        check_target(Path(output_dir) / output, force=force)
    return plan


@dataclass
class LayoutExportResult:
    """What one layout export wrote."""

    layout: str
    outputs: list[Path]
    """The top-level paths it published (a folder, or a package and its ``.mlmodelc``)."""
    packages: list[ExportResult] = field(default_factory=list)
    """Each package, at its published path, with its timings and op census."""
    compiled: list[Path] = field(default_factory=list)
    """The ``.mlmodelc`` written (macOS with Xcode command line tools only)."""
    compile_commands: list[str] = field(default_factory=list)
    """Elsewhere: the commands that compile the packages on a Mac."""
    notes: list[str] = field(default_factory=list)


def export_layout(
    architecture: Architecture,
    plan: LayoutPlan,
    *,
    size: str | None,
    weights: Any,
    precision: Precision,
    target: tuple[str, Any],
    output_dir: Path,
    force: bool = False,
    reporter: Reporter | None = None,
    compile_models: bool | None = None,
) -> LayoutExportResult:
    """Write every package and file of ``plan`` into ``output_dir`` (see the module doc).

    ``compile_models`` None: compile where Xcode's compiler exists (:func:`can_compile`).
    """
    reporter = reporter or SilentReporter()
    compile_models = can_compile() if compile_models is None else compile_models
    output_dir = Path(output_dir)
    target_name, target_value = target
    first = output_dir / plan.outputs[0]
    result = LayoutExportResult(layout=plan.layout, outputs=[first])
    files = dict(plan.files(weights))
    if files and plan.root is None:
        raise ValueError(f"layout {plan.layout!r} writes files but has no root folder")
    with staging(first, force=force) as stage, stage.temporary_files():
        root = stage.path if plan.root is not None else stage.dir
        if plan.root is not None:
            root.mkdir()
        for package in plan.packages:
            staged = root / package.path if plan.root is not None else stage.path
            final = (first / package.path) if plan.root is not None else first
            result.packages.append(
                _export_package(
                    architecture,
                    plan,
                    package,
                    staged=staged,
                    final=final,
                    size=size,
                    weights=weights,
                    precision=precision,
                    target=(target_name, target_value),
                    reporter=reporter,
                )
            )
            # Keep every component's weights (another package may need them) but let the
            # architecture drop what it can read again, and hand freed memory back.
            architecture.release_weights(weights, list(architecture.components()))
            release_freed_memory()
            if compile_models:
                compile_package(staged, staged.parent)
        for relative, content in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        if compile_models and plan.root is None:
            beside = stage.publish_beside(compiled_outputs(plan)[0])
            result.outputs.append(beside)
        stage.publish()
    for package in result.packages:
        package.op_counts = op_counts(package.path)
        where = package.path.parent
        if compile_models:
            result.compiled.append(where / compiled_name(package.path))
        else:
            result.compile_commands.append(shell_line(compile_command(package.path, where)))
    result.notes = list(plan.notes(weights))
    return result


def _export_package(
    architecture: Architecture,
    plan: LayoutPlan,
    package: LayoutPackage,
    *,
    staged: Path,
    final: Path,
    size: str | None,
    weights: Any,
    precision: Precision,
    target: tuple[str, Any],
    reporter: Reporter,
) -> ExportResult:
    """Build, convert and save one package of a layout at ``staged`` (published later)."""
    target_name, target_value = target
    label = f"{plan.root}/{package.path}" if plan.root else package.path
    result = ExportResult(
        path=final,
        architecture=architecture.name,
        size=size,
        component=package.name,
        variant="ane",
        precision=precision.value,
        target=target_name,
    )
    timings = result.timings
    with timed_phase(reporter, label, "build", timings):
        model = package.build(weights)
    metadata = result_metadata(architecture, result, weights)
    metadata[PREFIX + "layout"] = plan.layout
    mlmodel = convert_model(
        model,
        precision=precision,
        target=target_value,
        metadata=metadata,
        reporter=reporter,
        label=label,
        timings=timings,
    )
    with timed_phase(reporter, label, "save", timings):  # staging turns OSError into one line
        staged.parent.mkdir(parents=True, exist_ok=True)
        mlmodel.save(str(staged))
        del mlmodel
        record_digests(staged)  # as export_component: `ane inspect --verify` checks them
    return result
