"""``ane export ARCH``: write Core ML packages for one or all components."""

from __future__ import annotations

from pathlib import Path

import click
from ane_core.architecture import NATIVE_LAYOUT
from ane_core.build_options import parse_build_options
from ane_core.compress import parse_compression
from ane_core.errors import UsageError
from ane_core.export import (
    check_stateful,
    check_variant,
    export_component,
    package_path,
    resolve_components,
)
from ane_core.inspect import inspect_package, write_report
from ane_core.layout_export import export_layout, find_layout, layout_precisions, plan_layout
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
    "--precision",
    default=None,
    help="fp16 or fp32 compute and I/O (default fp16; a --layout may fix the I/O dtype, "
    "see `ane list`).",
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
@click.option(
    "--layout",
    default=NATIVE_LAYOUT,
    show_default=True,
    help="How the files are laid out: native (one package per component), or an app's "
    "layout the architecture offers (`ane list`).",
)
@click.option(
    "--name",
    default=None,
    help="Model name in a layout's file or folder names (default: the size, or the "
    "checkpoint's directory name).",
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
    layout,
    name,
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
    chosen = find_layout(arch, layout)
    if chosen.name != NATIVE_LAYOUT:
        _refuse_native_only(chosen.name, variant, component, compress, stateful)
        _export_layout(
            arch,
            chosen.name,
            size=size,
            name=name,
            checkpoint=checkpoint,
            seed=seed,
            precision=layout_precisions(chosen, [precision] if precision else [])[0],
            target=target,
            output_dir=output_dir,
            force=force,
            quiet=quiet,
            build_options=build_options,
        )
        return
    if name is not None:
        raise UsageError(
            "--name names a layout's files; native packages are named by size.",
            "Drop --name, or pass --layout.",
        )
    # Validate everything cheap before loading gigabytes of weights.
    prec = parse_precision(precision or chosen.default_precision)
    target_pair = parse_target(target, precision=prec, stateful=stateful)
    compression = parse_compression(compress)
    check_variant(arch, variant)
    components = resolve_components(arch, component)
    if stateful:
        check_stateful(arch, variant, components)
    for each in components:
        keeps_state = stateful and each in arch.stateful_components(variant)
        path = package_path(
            arch,
            output_dir,
            size=size,
            component=each,
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
    for index, each in enumerate(components):
        result = export_component(
            arch,
            size=size,
            component=each,
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


def _refuse_native_only(
    layout: str, variant: str, component: str, compress: str | None, stateful: bool
) -> None:
    """Options that choose among native packages mean nothing to an app's layout."""
    given = [
        flag
        for flag, used in (
            (f"--arch {variant}", variant != "ane"),
            (f"--component {component}", component != "all"),
            (f"--compress {compress}", compress not in (None, "none")),
            ("--stateful", stateful),
        )
        if used
    ]
    if given:
        raise UsageError(
            f"--layout {layout} exports the app's whole set of ANE packages; "
            f"{', '.join(given)} applies to the native layout only.",
            f"Drop {', '.join(flag.split()[0] for flag in given)}.",
        )


def _export_layout(
    arch,
    layout: str,
    *,
    size,
    name,
    checkpoint,
    seed,
    precision,
    target,
    output_dir: Path,
    force: bool,
    quiet: bool,
    build_options,
) -> None:
    """``--layout``: every package and file of the app's layout, then how to compile."""
    target_pair = parse_target(target, precision=precision)
    plan = plan_layout(
        arch,
        layout,
        size=size,
        name=name,
        checkpoint=checkpoint,
        output_dir=output_dir,
        force=force,
        build_options=build_options,
    )  # every path checked before the weights load
    weights = arch.load_weights(size, checkpoint, seed=seed)
    click.echo(f"weights: {weights.source}", err=True)
    result = export_layout(
        arch,
        plan,
        size=size,
        weights=weights,
        precision=precision,
        target=target_pair,
        output_dir=output_dir,
        force=force,
        reporter=PhasePrinter(enabled=not quiet),
    )
    for package in result.packages:
        total = sum(package.timings.values())
        ops = sum(package.op_counts.values())
        click.echo(f"{package.path}  ({total:.1f} s, {ops} ops, {package.cast_count} cast)")
        click.echo(f"  {inspect_package(package.path).summary_line()}")
    for path in result.compiled:
        click.echo(f"compiled: {path}")
    if result.compile_commands:
        click.echo("Compile on a Mac with Xcode's command line tools:")
        for command in result.compile_commands:
            click.echo(f"  {command}")
    for note in result.notes:
        click.echo(f"note: {note}")
