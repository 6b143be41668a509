"""Entry point of the whisper-ane plugin (``[project.entry-points.ane] whisper``)."""

from __future__ import annotations

from collections.abc import Callable

from ane_core import hookimpl
from ane_core.architecture import Architecture

from whisper_ane.architecture import WhisperArchitecture


@hookimpl
def register_architectures(register: Callable[[Architecture], None]) -> None:
    """Add the ``whisper`` architecture."""
    register(WhisperArchitecture())
