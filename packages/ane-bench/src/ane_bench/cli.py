"""The ``ane`` command: a click group whose subcommands live in :mod:`ane_bench.commands`.

It knows no architecture by name; everything model-specific comes from installed plugins
through :mod:`ane_core.plugins`.
"""

from __future__ import annotations

import os

import click

from ane_bench import __version__
from ane_bench.commands import (
    bench_cmd,
    doctor_cmd,
    eval_cmd,
    export_cmd,
    inspect_cmd,
    list_cmd,
    parity_cmd,
    transcribe_cmd,
)
from ane_bench.errors import AneGroup


@click.group(cls=AneGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ane")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Export PyTorch transformers to Core ML for the Apple Neural Engine."""
    if debug:
        os.environ["ANE_DEBUG"] = "1"
    ctx.meta["ane.debug"] = debug


cli.add_command(list_cmd.list_command)
cli.add_command(list_cmd.plugins_command)
cli.add_command(export_cmd.export_command)
cli.add_command(inspect_cmd.inspect_command)
cli.add_command(doctor_cmd.doctor_command)
cli.add_command(bench_cmd.bench_command)
cli.add_command(parity_cmd.parity_command)
cli.add_command(transcribe_cmd.transcribe_command)
cli.add_command(eval_cmd.eval_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="ane")
