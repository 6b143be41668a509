"""The export measurement, run inside a child process (see :mod:`ane_bench.bench.child`).

Why it exports through :func:`ane_core.export.export_component`: the figures must be those
of the real pipeline ``ane export`` runs, not of a re-implementation. Per phase it records
wall time and peak resident memory; per process, the weight loading and the overall peak.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ane_core.architecture import Architecture
from ane_core.compress import parse_compression
from ane_core.export import export_component
from ane_core.package_size import bytes_on_disk
from ane_core.progress import timed_phase
from ane_core.targets import Precision, parse_target

from ane_bench.bench.child import Send
from ane_bench.bench.inspect_summary import summarize_package
from ane_bench.bench.memory import PeakTracker


class MeasuringReporter:
    """A progress reporter that also records each phase's peak RSS and forwards events."""

    def __init__(self, send: Send, tracker: PeakTracker) -> None:
        self.send = send
        self.tracker = tracker
        self.peaks: dict[tuple[str, str], int] = {}

    def phase_started(self, label: str, phase: str) -> None:
        self.send(("phase_started", label, phase))
        self.tracker.start_phase()

    def phase_finished(self, label: str, phase: str, seconds: float) -> None:
        self.peaks[(label, phase)] = self.tracker.end_phase()
        self.send(("phase_finished", label, phase, seconds))


def export_job(
    send: Send,
    architecture: Architecture,
    size: str | None,
    variant: str,
    precision: str,
    components: tuple[str, ...],
    checkpoint: str | None,
    seed: int,
    target: str,
    output_dir: str,
    compression: str = "none",
) -> dict[str, Any]:
    """Load weights once, export each component (weight-compressed as ``compression``
    names), and report what every step cost."""
    started = time.perf_counter()
    tracker = PeakTracker()
    reporter = MeasuringReporter(send, tracker)
    prec = Precision(precision)
    target_pair = parse_target(target, precision=prec)
    load_timing: dict[str, float] = {}
    with timed_phase(reporter, "weights", "load", load_timing):
        weights = architecture.load_weights(size, checkpoint, seed=seed)
    exports = []
    for index, component in enumerate(components):
        result = export_component(
            architecture,
            size=size,
            component=component,
            variant=variant,
            weights=weights,
            precision=prec,
            target=target_pair,
            output_dir=Path(output_dir),
            force=True,
            reporter=reporter,
            compression=parse_compression(compression),
        )
        architecture.release_weights(weights, components[index + 1 :])  # as ane export
        label = result.path.name
        phases = dict(result.timings)
        exports.append(
            {
                "component": component,
                "package": str(result.path),
                "package_bytes": bytes_on_disk(result.path),
                "phases_s": phases,
                "export_s": sum(phases.values()),
                "phase_peak_rss_bytes": {phase: reporter.peaks[(label, phase)] for phase in phases},
            }
        )
    process_wall_s = time.perf_counter() - started
    process_peak = tracker.overall()
    for entry in exports:  # after the figures above: reading the program is not export cost
        entry["inspect"] = summarize_package(entry["package"])
    return {
        "weights_source": weights.source,
        "weights_sha256": weights.sha256,
        "load_weights_s": load_timing["load"],
        "load_weights_peak_rss_bytes": reporter.peaks[("weights", "load")],
        "process_wall_s": process_wall_s,
        "process_peak_rss_bytes": process_peak,
        "phase_peaks_are_per_phase": bool(tracker.per_phase_reset),
        "exports": exports,
    }
