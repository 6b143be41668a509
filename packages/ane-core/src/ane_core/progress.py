"""Phase timing and progress reporting for long-running jobs.

Why a tiny protocol: ane-core must not depend on a CLI toolkit, but users want to see which
phase of a minutes-long export is running. The CLI passes a reporter that prints; library
users get a silent one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Protocol


class Reporter(Protocol):
    """Receives phase boundaries; ``label`` names the job (e.g. the package being written)."""

    def phase_started(self, label: str, phase: str) -> None: ...

    def phase_finished(self, label: str, phase: str, seconds: float) -> None: ...


class SilentReporter:
    """Reporter that reports nothing."""

    def phase_started(self, label: str, phase: str) -> None:
        pass

    def phase_finished(self, label: str, phase: str, seconds: float) -> None:
        pass


@contextlib.contextmanager
def timed_phase(
    reporter: Reporter, label: str, phase: str, timings: dict[str, float]
) -> Iterator[None]:
    """Time one phase into ``timings[phase]`` and tell the reporter when it starts and ends."""
    reporter.phase_started(label, phase)
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[phase] = time.perf_counter() - start
    reporter.phase_finished(label, phase, timings[phase])
