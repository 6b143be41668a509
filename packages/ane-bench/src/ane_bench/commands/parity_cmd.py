"""``ane parity ARCH``: does the exported package compute what the PyTorch model computes?

For each component it runs, on the same named inputs (``Architecture.parity_inputs``), the
reference (stock PyTorch, FP32), the ANE PyTorch module, and the exported ANE package at each
precision through each backend (the numpy reference executor anywhere, Core ML on macOS),
brings every output to the reference's layout (``Architecture.to_reference_layout``) and
prints one table of PSNR and max abs error. Any PSNR under its floor (``--min-psnr-fp32``,
``--min-psnr-fp16``) makes the command exit 1, so CI can gate on it. Nothing here knows a
model: architectures say what their inputs and layouts are.

``--compress`` (repeatable) also exports each precision weight-compressed; those rows carry
the package size, still against the FP32 reference, and are reported without a floor unless
``--min-psnr-compressed`` gives one (4-bit palettes lose 20+ dB on real Whisper weights: that
is a measurement, not a failure, until a user asks for a bar). With input files and every component, the uncompressed package is the baseline
for a second table: whether each file's task output (``Architecture.task_outputs``, e.g. a
transcript) is unchanged under each compression.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
from ane_core.architecture import Architecture, ExportableModel, ParityCase
from ane_core.build_options import parse_build_options
from ane_core.compress import NO_COMPRESSION, Compression
from ane_core.errors import UsageError
from ane_core.executor import BACKENDS, load_program
from ane_core.executor.coreml import parse_compute_units, require_macos
from ane_core.export import export_component, package_name, resolve_components
from ane_core.metrics import max_abs_error, psnr
from ane_core.plugins import get_architecture
from ane_core.targets import DEFAULT_TARGET, Precision, parse_precision, parse_target

from ane_bench.bench.package_size import bytes_on_disk
from ane_bench.compress_option import compress_option, parse_compressions
from ane_bench.reporting import PhasePrinter
from ane_bench.task_outputs import compare_task_outputs, format_task_outputs
from ane_bench.weights_option import weights_options

DEFAULT_MIN_PSNR = {Precision.FP32: 90.0, Precision.FP16: 35.0}
"""The issue's floors: FP32 exports >= 90 dB, FP16 >= 35 dB (Apple's ml-stable-diffusion and
whisperkittools floor) against the FP32 reference."""


@dataclass
class ParityRow:
    """One comparison: an output of one model on one input, against the reference."""

    component: str
    case: str
    output: str
    model: str
    precision: str
    psnr_db: float
    max_abs_error: float
    min_psnr_db: float | None
    """``None``: reported only (compressed rows without ``--min-psnr-compressed``)."""
    compression: str = "none"
    package_bytes: int | None = None
    """Size of the package on disk; ``None`` for PyTorch modules."""

    @property
    def passed(self) -> bool:
        return self.min_psnr_db is None or self.psnr_db >= self.min_psnr_db

    def as_json(self) -> dict[str, Any]:
        row = asdict(self)
        row["psnr_db"] = None if math.isinf(self.psnr_db) else self.psnr_db  # identical
        row["passed"] = self.passed
        return row


def module_outputs(module: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> tuple:
    """A module's outputs as a tuple, in FP32, without autograd."""
    with torch.no_grad():
        out = module.eval()(*inputs)
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def package_feed(
    model: ExportableModel, inputs: Sequence[torch.Tensor], precision: Precision
) -> dict[str, np.ndarray]:
    """Inputs by the package's names, in the dtypes the export declared."""
    return {
        spec.name: tensor.detach()
        .numpy()
        .astype(np.int32 if spec.kind == "int" else precision.numpy_dtype)
        for spec, tensor in zip(model.inputs, inputs, strict=True)
    }


def package_outputs(
    program: Any, model: ExportableModel, inputs: Sequence[torch.Tensor], precision: Precision
) -> tuple:
    """Run a loaded package once (fresh state if it is stateful); outputs in spec order."""
    feed = package_feed(model, inputs, precision)
    result = program(feed, state=program.new_state()) if program.states else program(feed)
    return tuple(
        torch.from_numpy(np.asarray(result[spec.name], dtype=np.float32)) for spec in model.outputs
    )


def compare(
    reference: Sequence[torch.Tensor],
    outputs: Sequence[torch.Tensor],
    names: Sequence[str],
    **row: Any,
) -> list[ParityRow]:
    """One row per output; shapes must already match the reference's."""
    if len(reference) != len(outputs):
        raise UsageError(
            f"{row['model']} gives {len(outputs)} outputs, the reference {len(reference)}.",
            "Fix the architecture's to_reference_layout.",
        )
    rows = []
    for index, (ref, out) in enumerate(zip(reference, outputs, strict=True)):
        name = names[index] if index < len(names) else f"output{index}"
        if tuple(ref.shape) != tuple(out.shape):
            raise UsageError(
                f"{row['model']} output {name!r} has shape {tuple(out.shape)}, the reference "
                f"{tuple(ref.shape)}.",
                "Fix the architecture's to_reference_layout.",
            )
        rows.append(
            ParityRow(
                output=name, psnr_db=psnr(ref, out), max_abs_error=max_abs_error(ref, out), **row
            )
        )
    return rows


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
    reporter: PhasePrinter,
    compressions: Sequence[Compression] = (NO_COMPRESSION,),
    min_psnr_compressed: float | None = None,
) -> list[ParityRow]:
    """Every comparison for one component (see the module docstring)."""
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
                reporter=reporter,
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


def format_table(rows: Sequence[ParityRow]) -> str:
    """Aligned plain-text table, one line per comparison."""
    header = (
        "component",
        "case",
        "output",
        "model",
        "precision",
        "compress",
        "MiB",
        "PSNR dB",
        "max abs err",
        "floor",
        "",
    )
    lines = [header]
    for r in rows:
        lines.append(
            (
                r.component,
                r.case,
                r.output,
                r.model,
                r.precision,
                r.compression,
                "-" if r.package_bytes is None else f"{r.package_bytes / 2**20:.1f}",
                "inf" if math.isinf(r.psnr_db) else f"{r.psnr_db:.1f}",
                f"{r.max_abs_error:.3g}",
                "-" if r.min_psnr_db is None else f"{r.min_psnr_db:g}",
                "ok" if r.passed else "FAIL",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def default_backends() -> tuple[str, ...]:
    return ("mil", "coreml") if sys.platform == "darwin" else ("mil",)


@click.command("parity", context_settings={"ignore_unknown_options": True})
@click.argument("architecture")
@click.argument("build_args", nargs=-1, type=click.UNPROCESSED, metavar="[--OPTION VALUE]...")
@click.option("--size", help="Model size, e.g. tiny.en (see `ane list`).")
@weights_options
@click.option(
    "--input",
    "--audio",
    "files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A real input file (e.g. speech); repeat for more. Default: example inputs.",
)
@click.option(
    "--precision",
    "precisions",
    multiple=True,
    default=("fp32", "fp16"),
    show_default=True,
    help="Export precision to check; repeat for more.",
)
@click.option(
    "--component", default="all", show_default=True, help="A component (see `ane list`) or all."
)
@click.option(
    "--backend",
    "backends",
    multiple=True,
    help="mil (numpy reference executor, any OS) or coreml (macOS); repeat for both. "
    "Default: mil, and coreml on macOS.",
)
@click.option(
    "--compute-units",
    default="all",
    show_default=True,
    help="Core ML compute units: all, cpu_only, cpu_and_gpu, cpu_and_ne.",
)
@click.option("--target", default=DEFAULT_TARGET, show_default=True, help="Deployment target.")
@click.option(
    "--min-psnr-fp32",
    type=float,
    default=DEFAULT_MIN_PSNR[Precision.FP32],
    show_default=True,
    help="PSNR floor (dB) for FP32 exports and the ANE PyTorch module.",
)
@click.option(
    "--min-psnr-fp16",
    type=float,
    default=DEFAULT_MIN_PSNR[Precision.FP16],
    show_default=True,
    help="PSNR floor (dB) for FP16 exports.",
)
@compress_option(multiple=True)
@click.option(
    "--min-psnr-compressed",
    type=float,
    default=None,
    help="PSNR floor (dB) for weight-compressed exports. Default: none (reported only).",
)
@click.option(
    "--packages",
    "packages_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the exported packages here (overwritten). Default: a temporary directory.",
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--quiet", is_flag=True, help="No progress display.")
@click.pass_context
def parity_command(
    ctx: click.Context,
    architecture,
    build_args,
    size,
    checkpoint,
    seed,
    files,
    precisions,
    component,
    backends,
    compute_units,
    target,
    min_psnr_fp32,
    min_psnr_fp16,
    compress,
    min_psnr_compressed,
    packages_dir,
    json_path,
    quiet,
) -> None:
    """Compare ARCHITECTURE's stock PyTorch, ANE PyTorch and exported packages.

    Exits 1 when a PSNR is below its floor.
    """
    arch = get_architecture(architecture)
    build_options = parse_build_options(arch, build_args)
    size = size or arch.default_size()
    # Validate everything cheap before loading weights.
    parsed = list(dict.fromkeys(parse_precision(p) for p in precisions))
    for precision in parsed:
        parse_target(target, precision=precision)
    backends = tuple(dict.fromkeys(backends)) or default_backends()
    for backend in backends:
        if backend not in BACKENDS:
            raise UsageError(f"unknown backend {backend!r}.", f"Use one of: {', '.join(BACKENDS)}.")
    parse_compute_units(compute_units)
    if "coreml" in backends:
        require_macos()
    components = resolve_components(arch, component)
    compressions = parse_compressions(compress)
    if any(c.enabled for c in compressions) and NO_COMPRESSION not in compressions:
        compressions = (NO_COMPRESSION, *compressions)  # the baseline for task outputs
    min_psnr = {Precision.FP32: min_psnr_fp32, Precision.FP16: min_psnr_fp16}
    arch.check_input_files(files)
    weights = arch.load_weights(size, checkpoint, seed=seed)
    click.echo(f"weights: {weights.source}", err=True)
    reporter = PhasePrinter(enabled=not quiet)
    rows: list[ParityRow] = []
    with tempfile.TemporaryDirectory(prefix="ane-parity-") as scratch:
        target_dir = packages_dir or Path(scratch)
        target_dir.mkdir(parents=True, exist_ok=True)
        for name in components:
            rows += component_parity(
                arch,
                name,
                size=size,
                weights=weights,
                files=files,
                precisions=parsed,
                backends=backends,
                compute_units=compute_units,
                target=target,
                min_psnr=min_psnr,
                packages_dir=target_dir,
                build_options=build_options,
                reporter=reporter,
                compressions=compressions,
                min_psnr_compressed=min_psnr_compressed,
            )
        task_rows = []
        if set(components) == set(arch.components()):  # the whole task needs every package

            def packages_for(precision: Precision, compression: Compression) -> dict[str, Path]:
                return {
                    name: target_dir
                    / package_name(arch.name, size, name, "ane", precision, compression)
                    for name in components
                }

            task_rows = compare_task_outputs(
                arch, weights, files, parsed, compressions, packages_for
            )
    click.echo(format_table(rows))
    if task_rows:
        click.echo(format_task_outputs(task_rows))
    failed = [r for r in rows if not r.passed]
    if json_path is not None:
        report = {
            "architecture": arch.name,
            "size": size,
            "weights": weights.source,
            "inputs": list(files),
            "min_psnr_db": {p.value: v for p, v in min_psnr.items()},
            "min_psnr_compressed_db": min_psnr_compressed,
            "compressions": [c.name for c in compressions],
            "passed": not failed,
            "rows": [r.as_json() for r in rows],
            "task_outputs": [r.as_json() for r in task_rows],
        }
        json_path.write_text(json.dumps(report, indent=2) + "\n")
    if failed:
        click.echo(
            f"parity: {len(failed)} of {len(rows)} comparisons below their PSNR floor.", err=True
        )
        ctx.exit(1)
