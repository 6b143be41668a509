"""``ane export ARCH``: write Core ML packages for one or all components."""

from __future__ import annotations

from pathlib import Path

import click
from ane_core.build_options import parse_build_options
from ane_core.compress import parse_compression
from ane_core.export import (
    check_stateful,
    check_variant,
    export_component,
    package_path,
    resolve_components,
)
from ane_core.inspect import inspect_package, write_report
from ane_core.plugins import get_architecture
from ane_core.save import check_target
from ane_core.targets import DEFAULT_TARGET, parse_precision, parse_target

from ane_bench.compress_option import compress_option
from ane_bench.reporting import PhasePrinter
from ane_bench.weights_option import weights_options


@click.command("export", context_settings={"ignore_unknown_options": True})
@click.argument("architecture")
@click.argument("build_args", nargs=-1, type=click.UNPROCESSED, metavar="[--OPTION VALUE]...")
@click.option("--size", help="Model size, e.g. tiny.en (see `ane list`).")
@weights_options
@click.option(
    "-o",
    "--output",
    "output_dir",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory for the .mlpackage files.",
)
@click.option(
    "--arch",
    "variant",
    default="ane",
    show_default=True,
    help="ane (Neural Engine layout) or stock (original module).",
)
@click.option(
    "--precision", default="fp16", show_default=True, help="fp16 or fp32 compute and I/O."
)
@click.option(
    "--component", default="all", show_default=True, help="A component (see `ane list`) or all."
)
@click.option(
    "--target",
    default=DEFAULT_TARGET,
    show_default=True,
    help="Minimum deployment target, e.g. macOS13, iOS16.",
)
@compress_option(multiple=False)
@click.option(
    "--stateful",
    is_flag=True,
    help="Keep caches inside the model as Core ML state, for components that have them "
    "(`ane list`); needs --target macOS15/iOS18 or newer.",
)
@click.option("--force", is_flag=True, help="Overwrite existing packages.")
@click.option("--quiet", is_flag=True, help="No progress display.")
def export_command(
    architecture,
    build_args,
    size,
    checkpoint,
    seed,
    output_dir,
    variant,
    precision,
    component,
    target,
    compress,
    stateful,
    force,
    quiet,
) -> None:
    """Export ARCHITECTURE to Core ML ML programs for the Neural Engine.

    Options that ARCHITECTURE declares itself (`ane list` shows them, e.g. --seq-len 64)
    follow it on the command line.
    """
    arch = get_architecture(architecture)
    build_options = parse_build_options(arch, build_args)
    if size is None:
        size = arch.default_size()
    # Validate everything cheap before loading gigabytes of weights.
    prec = parse_precision(precision)
    target_pair = parse_target(target, precision=prec, stateful=stateful)
    compression = parse_compression(compress)
    check_variant(arch, variant)
    components = resolve_components(arch, component)
    if stateful:
        check_stateful(arch, variant, components)
    for name in components:
        keeps_state = stateful and name in arch.stateful_components(variant)
        path = package_path(
            arch,
            output_dir,
            size=size,
            component=name,
            variant=variant,
            precision=prec,
            compression=compression,
            stateful=keeps_state,
            build_options=build_options,
        )
        check_target(path, force=force)
    reporter = PhasePrinter(enabled=not quiet)
    weights = arch.load_weights(size, checkpoint, seed=seed)
    click.echo(f"weights: {weights.source}", err=True)
    for index, name in enumerate(components):
        result = export_component(
            arch,
            size=size,
            component=name,
            variant=variant,
            weights=weights,
            precision=prec,
            target=target_pair,
            output_dir=output_dir,
            force=force,
            reporter=reporter,
            build_options=build_options,
            compression=compression,
            stateful=stateful,
        )
        arch.release_weights(weights, components[index + 1 :])
        total = sum(result.timings.values())
        ops = sum(result.op_counts.values())
        click.echo(f"{result.path}  ({total:.1f} s, {ops} ops, {result.cast_count} cast)")
        report = inspect_package(result.path)
        click.echo(f"  {report.summary_line()}; report: {write_report(report)}")
