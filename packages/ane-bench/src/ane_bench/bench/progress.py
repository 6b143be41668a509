"""What the user sees while a benchmark runs: which step of how many, and which phase.

Why separate from measuring: the measuring child processes only send events; how they are
shown (or not, with ``--quiet``) is the parent's business.
"""

from __future__ import annotations

import click

from ane_bench.bench.child import Event


class BenchProgress:
    """Prints ``[i/n] step`` headers and one line per phase with its seconds, on stderr."""

    def __init__(self, total_steps: int, enabled: bool = True) -> None:
        self.total_steps = total_steps
        self.enabled = enabled
        self.step = 0

    def _echo(self, text: str, nl: bool = True) -> None:
        if self.enabled:
            click.echo(text, err=True, nl=nl)

    def start_step(self, title: str) -> None:
        self.step += 1
        self._echo(f"[{self.step}/{self.total_steps}] {title}")

    def event(self, event: Event) -> None:
        """Show one event from a measuring process."""
        kind = event[0]
        if kind == "phase_started":
            _, label, phase = event
            self._echo(f"  {label}: {phase} ...", nl=False)
        elif kind == "phase_finished":
            seconds = event[3]
            self._echo(" done" if seconds is None else f" {seconds:.2f} s")

    def note(self, text: str) -> None:
        self._echo(f"  {text}")
