"""Progress display for long jobs: one line per phase, with its time, on stderr."""

from __future__ import annotations

import click


class PhasePrinter:
    """Prints ``label: phase ...`` when a phase starts and its duration when it ends."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def phase_started(self, label: str, phase: str) -> None:
        if self.enabled:
            click.echo(f"  {label}: {phase} ...", err=True, nl=False)

    def phase_finished(self, label: str, phase: str, seconds: float) -> None:
        if self.enabled:
            click.echo(f" {seconds:.1f} s", err=True)
