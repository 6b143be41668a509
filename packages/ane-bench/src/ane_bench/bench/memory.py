"""Peak resident memory of the current process, overall and per phase.

Why /proc: ``ru_maxrss`` only ever grows, so it cannot say which phase of an export used the
memory. On Linux, writing ``5`` to ``/proc/self/clear_refs`` resets the high-water mark
(``VmHWM``, which is also what ``ru_maxrss`` reports), so each phase gets its own peak. The
reset also erases the process-wide peak, which :class:`PeakTracker` therefore keeps itself.
Elsewhere (macOS) only the cumulative ``ru_maxrss`` exists, and phase peaks say so.
"""

from __future__ import annotations

import re
import resource
import sys
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def high_water_mark_bytes() -> int:
    """The process's peak resident set size so far (since the last reset), in bytes."""
    try:
        match = re.search(r"^VmHWM:\s+(\d+)\s+kB", STATUS.read_text(), re.MULTILINE)
    except OSError:
        match = None
    if match:
        return int(match.group(1)) * 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # bytes on macOS, KiB on Linux


def reset_high_water_mark() -> bool:
    """Reset the peak to the current RSS; ``False`` where the OS cannot (then peaks accumulate)."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


class PeakTracker:
    """Per-phase peak RSS plus the process-wide peak that survives the per-phase resets."""

    def __init__(self) -> None:
        self.process_peak = high_water_mark_bytes()
        self.per_phase_reset: bool | None = None
        """Whether phase peaks are each phase's own (``True``) or cumulative (``False``)."""

    def start_phase(self) -> None:
        self.process_peak = max(self.process_peak, high_water_mark_bytes())
        reset = reset_high_water_mark()
        self.per_phase_reset = (
            reset if self.per_phase_reset is None else (self.per_phase_reset and reset)
        )

    def end_phase(self) -> int:
        """The peak RSS since :meth:`start_phase`, in bytes."""
        peak = high_water_mark_bytes()
        self.process_peak = max(self.process_peak, peak)
        return peak

    def overall(self) -> int:
        """The process's peak RSS over its whole life, in bytes."""
        self.process_peak = max(self.process_peak, high_water_mark_bytes())
        return self.process_peak
