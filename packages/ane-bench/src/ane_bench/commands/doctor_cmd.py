"""``ane doctor PACKAGE``: what Core ML chose for each op on this Mac, beside the prediction."""

from __future__ import annotations

import json
from pathlib import Path

import click
from ane_core.doctor import DEFAULT_RUNS, diagnose, render_doctor


@click.command("doctor")
@click.argument("package", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@click.option(
    "--runs",
    type=int,
    default=DEFAULT_RUNS,
    show_default=True,
    help="Predictions timed after the first (random inputs of the declared shapes).",
)
def doctor_command(package: Path, as_json: bool, runs: int) -> None:
    """Compile PACKAGE, load it with CPU_AND_NE and compare Core ML's plan with `ane inspect`.

    Prints every op's device and estimated cost from Core ML's MLComputePlan, the ANE
    coverage (share of ops and of estimated cost), load and predict latency, and where the
    published rules `ane inspect` predicts with disagree with what Core ML chose. Needs
    macOS 14.4+; elsewhere it says so in one line and exits 2.
    """
    report = diagnose(package, runs=runs)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else render_doctor(report))
