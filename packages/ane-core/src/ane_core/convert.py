"""Trace a PyTorch module and convert it to a Core ML ML program.

Why these choices:
- ``torch.jit.trace``: the coremltools path that works with today's torch on Linux.
- FP16 exports declare float16 inputs and outputs, so coremltools inserts no ``cast`` at the
  model's edges (casts run off the Neural Engine and cost a copy each).
- ``skip_model_load``: Core ML cannot load models off macOS; loading happens at predict time
  on a Mac.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import torch

from ane_core._coremltools import coremltools
from ane_core.architecture import ExportableModel, TensorSpec
from ane_core.passes import conversion_pipeline
from ane_core.targets import Precision


def trace(model: ExportableModel) -> torch.jit.ScriptModule:
    """Trace ``model.module`` in eval mode with its example inputs, without autograd."""
    module = model.module.eval()
    with torch.no_grad():
        return torch.jit.trace(module, model.example_inputs, check_trace=False, strict=False)


def _input_type(spec: TensorSpec, precision: Precision) -> Any:
    ct = coremltools()
    dtype = np.int32 if spec.kind == "int" else precision.numpy_dtype
    return ct.TensorType(name=spec.name, shape=spec.shape, dtype=dtype)


def _output_type(spec: TensorSpec, precision: Precision) -> Any:
    ct = coremltools()
    dtype = np.int32 if spec.kind == "int" else precision.numpy_dtype
    return ct.TensorType(name=spec.name, dtype=dtype)


def to_coreml(
    traced: torch.jit.ScriptModule,
    model: ExportableModel,
    precision: Precision,
    target: Any,
    *,
    quiet: bool = True,
) -> Any:
    """Convert a traced module to an ``MLModel`` (ML program) at ``precision`` for ``target``."""
    ct = coremltools()
    compute_precision = (
        ct.precision.FLOAT16 if precision is Precision.FP16 else ct.precision.FLOAT32
    )
    # coremltools draws tqdm progress bars on stderr; our own progress display replaces them.
    sink = io.StringIO()
    redirect = contextlib.redirect_stderr(sink) if quiet else contextlib.nullcontext()
    with redirect:
        return ct.convert(
            traced,
            source="pytorch",
            inputs=[_input_type(spec, precision) for spec in model.inputs],
            outputs=[_output_type(spec, precision) for spec in model.outputs],
            convert_to="mlprogram",
            compute_precision=compute_precision,
            minimum_deployment_target=target,
            skip_model_load=True,
            pass_pipeline=conversion_pipeline(),
        )
