"""``ane inspect PATH.mlpackage``: what in a saved model keeps it off the Neural Engine."""

from __future__ import annotations

import json
from pathlib import Path

import click
from ane_core.inspect import inspect_package
from ane_core.inspect.render import render_text


@click.command("inspect")
@click.argument("package", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@click.option(
    "--no-compute-plan",
    is_flag=True,
    help="Skip Core ML's compute plan (macOS 14.4+; compiling a large model takes a while).",
)
@click.option(
    "--verify",
    is_flag=True,
    help="Also read every file of the package and compare its sha256 with the one recorded "
    "at export (exit 2 if one differs).",
)
def inspect_command(package: Path, as_json: bool, no_compute_plan: bool, verify: bool) -> None:
    """Report PACKAGE's I/O, op census, ANE findings, FLOPs and weight bytes.

    Reads the saved ML program (no PyTorch, works on any OS) after checking the package:
    manifest, model spec and every weight blob's header against its file, so a damaged
    package (cut short, a Git LFS pointer) exits 2 with one line. On macOS 14.4+ it adds the
    device Core ML plans for each op.
    """
    report = inspect_package(package, with_compute_plan=not no_compute_plan, verify=verify)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(render_text(report))
