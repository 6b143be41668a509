"""Validate a MIL program once per pass pipeline instead of after every pass.

Why: coremltools' ``PassPipelineManager.apply_pipeline`` calls ``Program.validate`` before
the pipeline and again after each of its ~110 passes. Validation walks every op and every
producer/consumer edge, so on a big program it is a third of the conversion: 5.3 s of 15.9 s
for a Whisper small decoder here, more for medium. The check only reads the program (it
raises on a broken graph, it changes nothing), so running it once at the end of each
pipeline, with the scope check that coremltools runs after dead-code elimination, still
refuses a broken program and leaves the converted model byte-identical. What is lost is
only the name of the pass that broke it; set ``ANE_VALIDATE_EVERY_PASS=1`` to get
coremltools' behaviour back when debugging a pass. The patch is process-wide while the
context is open: do not convert in several threads at once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from ane_core._coremltools import coremltools

ENV_EVERY_PASS = "ANE_VALIDATE_EVERY_PASS"


@contextlib.contextmanager
def validate_once_per_pipeline() -> Iterator[None]:
    """Within this context, coremltools validates each pass pipeline's result once."""
    if os.environ.get(ENV_EVERY_PASS, "") not in ("", "0"):
        yield
        return
    coremltools()
    from coremltools.converters.mil.mil.passes.pass_pipeline import PassPipelineManager
    from coremltools.converters.mil.mil.program import Program

    original_apply = PassPipelineManager.__dict__["apply_pipeline"]
    original_validate = Program.validate

    def skip_validate(self: Any, check_essential_scope: bool = False) -> None:
        return None

    def apply_pipeline(prog: Any, pass_pipeline: Any) -> None:
        # A pass may run a pipeline of its own: restore what was there, not the original.
        previous = Program.validate
        Program.validate = skip_validate
        try:
            original_apply.__func__(prog, pass_pipeline)
        finally:
            Program.validate = previous
        original_validate(prog, check_essential_scope=True)

    PassPipelineManager.apply_pipeline = staticmethod(apply_pipeline)
    try:
        yield
    finally:
        PassPipelineManager.apply_pipeline = original_apply
        Program.validate = original_validate
