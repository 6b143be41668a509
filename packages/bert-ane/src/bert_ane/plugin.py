"""Entry point of the bert-ane plugin (``[project.entry-points.ane] bert``)."""

from __future__ import annotations

from collections.abc import Callable

from ane_core import hookimpl
from ane_core.architecture import Architecture

from bert_ane.architecture import BertArchitecture


@hookimpl
def register_architectures(register: Callable[[Architecture], None]) -> None:
    """Add the ``bert`` architecture."""
    register(BertArchitecture())
