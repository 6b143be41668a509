"""``ane parity ARCH``: does the exported package compute what the PyTorch model computes?

The comparison itself is :func:`ane_core.parity.check_parity` (so Python users get it without
a CLI); this command parses options, prints the PSNR table (and, with ``--compress`` and
input files, the task-output table), writes ``--json`` and exits 1 when a PSNR is under its
floor (``--min-psnr-fp32``, ``--min-psnr-fp16``; compressed rows only against
``--min-psnr-compressed``), so CI can gate on it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import click
from ane_core.architecture import NATIVE_LAYOUT
from ane_core.build_options import parse_build_options
from ane_core.errors import UsageError
from ane_core.layout_export import find_layout, layout_precisions
from ane_core.parity import (
    DEFAULT_MIN_PSNR,
    ParityRow,
    TaskOutputRow,
    check_parity,
    check_settings,
)
from ane_core.plugins import get_architecture
from ane_core.targets import DEFAULT_TARGET, Precision

from ane_bench.compress_option import compress_option, parse_compressions
from ane_bench.reporting import PhasePrinter
from ane_bench.weights_option import weights_options


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


def format_task_outputs(rows: Sequence[TaskOutputRow]) -> str:
    """One line per file and setting: same or changed, and the text when it changed."""
    lines = []
    for r in rows:
        verdict = "same" if r.unchanged else f"CHANGED: {r.output!r} (uncompressed: {r.baseline!r})"
        lines.append(f"{r.precision} {r.compression} {Path(r.file).name}: {verdict}")
    return "\n".join(lines)


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
    help="Export precision to check; repeat for more. Default: every one the layout takes "
    "(native: fp32 and fp16).",
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
@click.option(
    "--layout",
    default=NATIVE_LAYOUT,
    show_default=True,
    help="Check an app's layout (`ane list`): each of its packages against its reference.",
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
    layout,
    json_path,
    quiet,
) -> None:
    """Compare ARCHITECTURE's stock PyTorch, ANE PyTorch and exported packages.

    Exits 1 when a PSNR is below its floor.
    """
    arch = get_architecture(architecture)
    build_options = parse_build_options(arch, build_args)
    size = size or arch.default_size()
    chosen = find_layout(arch, layout)
    if chosen.name != NATIVE_LAYOUT and component != "all":
        raise UsageError(
            f"--layout {chosen.name} checks all its packages; --component applies to the "
            "native layout only.",
            "Drop --component.",
        )
    # Everything cheap is checked (here and by check_parity) before weights load.
    components, parsed, backends = check_settings(
        arch,
        components=None if component == "all" else [component],
        precisions=layout_precisions(chosen, precisions or chosen.precisions),
        backends=backends,
        compute_units=compute_units,
        target=target,
    )
    compressions = parse_compressions(compress)
    arch.check_input_files(files)
    weights = arch.load_weights(size, checkpoint, seed=seed)
    click.echo(f"weights: {weights.source}", err=True)
    report = check_parity(
        arch,
        weights=weights,
        size=size,
        files=files,
        components=components,
        precisions=parsed,
        backends=backends,
        compute_units=compute_units,
        target=target,
        min_psnr={Precision.FP32: min_psnr_fp32, Precision.FP16: min_psnr_fp16},
        compressions=compressions,
        min_psnr_compressed=min_psnr_compressed,
        packages_dir=packages_dir,
        build_options=build_options,
        reporter=PhasePrinter(enabled=not quiet),
        layout=chosen.name,
    )
    click.echo(format_table(report.rows))
    if report.task_rows:
        click.echo(format_task_outputs(report.task_rows))
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    if report.failed:
        click.echo(
            f"parity: {len(report.failed)} of {len(report.rows)} comparisons below their PSNR "
            "floor.",
            err=True,
        )
        ctx.exit(1)
