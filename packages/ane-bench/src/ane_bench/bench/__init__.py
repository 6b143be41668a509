"""``ane bench``: measure exports, PyTorch latency and (on macOS) Core ML for a matrix of
sizes, variants, precisions and components, and write results.json, a Markdown table and
PNG plots.

Why a subpackage of small modules: measuring (child processes, memory, timing), describing
the machine, and presenting (JSON, Markdown, plots) change for different reasons; the runner
ties them together. Nothing here knows any architecture: everything model-specific comes
from the plugin's :class:`ane_core.architecture.Architecture` (``build`` and
``latency_cases``).
"""

from __future__ import annotations

NEEDS_MACOS = "needs macOS"
"""What a Core ML figure says off macOS, instead of a number nobody measured."""
