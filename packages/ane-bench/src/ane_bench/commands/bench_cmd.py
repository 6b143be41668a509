"""``ane bench ARCH``: export, inspect and time a matrix of sizes, archs and precisions."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from ane_core.errors import UsageError
from ane_core.plugins import get_architecture
from ane_core.targets import DEFAULT_TARGET, parse_precision, parse_target

from ane_bench.bench.matrix import build_matrix
from ane_bench.bench.progress import BenchProgress
from ane_bench.bench.results import write_results
from ane_bench.bench.runner import BenchSettings, count_steps, run_bench
from ane_bench.bench.weights import weights_by_size
from ane_bench.compress_option import compress_option


@click.command("bench")
@click.argument("architecture")
@click.option("--size", "sizes", multiple=True, help="A size to measure; repeat for more.")
@click.option(
    "--arch", "variants", multiple=True, help="ane and/or stock; repeat. Default: every arch."
)
@click.option(
    "--precision", "precisions", multiple=True, help="fp16 and/or fp32; repeat. Default: both."
)
@click.option(
    "--component", "components", multiple=True, help="A component or all; repeat. Default: all."
)
@click.option(
    "--checkpoint",
    "--weights",
    "weights",
    multiple=True,
    metavar="[SIZE=]SOURCE",
    help="Weights for every size (SOURCE) or one size (SIZE=SOURCE): a checkpoint file or "
    "directory, or 'random'. Default: the architecture's download.",
)
@compress_option(multiple=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for random weights.")
@click.option(
    "--repeat", type=click.IntRange(min=1), default=5, show_default=True, help="Timed runs."
)
@click.option(
    "--warmup", type=click.IntRange(min=0), default=1, show_default=True, help="Untimed runs."
)
@click.option(
    "--target", default=DEFAULT_TARGET, show_default=True, help="Minimum deployment target."
)
@click.option(
    "-o",
    "--output",
    "output_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("bench-results"),
    show_default=True,
    help="Directory for results.json, results.md and the plots.",
)
@click.option("--keep-packages", is_flag=True, help="Keep the exported packages in DIR/packages.")
@click.option("--no-latency", is_flag=True, help="Skip the PyTorch CPU latency runs.")
@click.option("--quiet", is_flag=True, help="No progress display.")
def bench_command(
    architecture,
    sizes,
    variants,
    precisions,
    components,
    weights,
    compress,
    seed,
    repeat,
    warmup,
    target,
    output_dir,
    keep_packages,
    no_latency,
    quiet,
) -> None:
    """Measure ARCHITECTURE's exports, PyTorch latency and (on macOS) Core ML.

    Every combination of --size, --arch, --precision and --compress is exported in its own process
    (time per phase, peak memory, package size, `ane inspect` summary); each size's modules
    are timed on the PyTorch CPU. Writes DIR/results.json, DIR/results.md and PNG plots.
    """
    arch = get_architecture(architecture)
    matrix = build_matrix(
        arch,
        sizes=sizes,
        variants=variants,
        precisions=precisions,
        components=components,
        compressions=compress,
    )
    for precision in matrix.precisions:
        parse_target(target, precision=parse_precision(precision.value))
    if output_dir.exists() and not output_dir.is_dir():
        raise UsageError(f"{output_dir} is not a directory.", "Pass a directory with -o.")
    settings = BenchSettings(
        architecture=arch,
        matrix=matrix,
        weights=weights_by_size(weights, matrix.sizes, list(arch.sizes())),
        seed=seed,
        target=target,
        warmup=warmup,
        repeat=repeat,
        output_dir=output_dir,
        keep_packages=keep_packages,
        latency=not no_latency,
    )
    progress = BenchProgress(count_steps(settings), enabled=not quiet)
    results = run_bench(settings, progress)
    written, notes = write_results(results, output_dir)
    for note in notes:
        click.echo(note, err=True)
    for path in written:
        click.echo(str(path))
    if results["errors"]:
        click.echo(f"{len(results['errors'])} step(s) failed; see {written[0]}.", err=True)
        sys.exit(1)
