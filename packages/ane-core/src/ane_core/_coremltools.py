"""Quiet, lazy access to coremltools.

Why: importing coremltools off macOS logs a dozen "Failed to load _MLModelProxy" warnings
and a torch-version warning. They are expected on Linux (Core ML cannot run here) and would
bury our one-line messages, so we import it once with its logger raised to ERROR. Lazy, so
``ane list`` stays fast.
"""

from __future__ import annotations

import logging
import warnings
from types import ModuleType

_module: ModuleType | None = None


def coremltools() -> ModuleType:
    """Return the coremltools module, imported without its platform warnings."""
    global _module
    if _module is None:
        logger = logging.getLogger("coremltools")
        previous = logger.level
        logger.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import coremltools as ct
        finally:
            logger.setLevel(previous)
        _module = ct
    return _module
