"""ane-core: Apple Neural Engine building blocks and the Core ML conversion pipeline.

Architecture plugins (whisper-ane, ...) implement the hooks in :mod:`ane_core.hookspecs`
with the :data:`hookimpl` marker exported here.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

PROJECT_NAME = "ane"
"""One name for everything pluggy: hook markers, plugin manager and entry-point group."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marker for hook implementations in plugins: ``@hookimpl def register_architectures(register)``."""

__all__ = ["PROJECT_NAME", "__version__", "hookimpl"]
