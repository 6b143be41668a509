r"""Trace a PyTorch module and convert it to a Core ML ML program.

Why these choices:
- ``torch.jit.trace``: the coremltools path that works with today's torch on Linux.
- FP16 exports declare float16 inputs and outputs, so coremltools inserts no ``cast`` at the
  model's edges (casts run off the Neural Engine and cost a copy each).
- Each pass pipeline's result is validated once, not after every pass
  (:mod:`ane_core.validate_once`): a third of the conversion time on big programs.
- ``skip_model_load``: Core ML cannot load models off macOS; loading happens at predict time
  on a Mac.
- States (:attr:`ExportableModel.states`) are float16 ``ct.StateType``\ s, the only dtype
  Core ML states take. Their buffers must be float16 in the traced module too: coremltools
  drops the in-place write to a float32 buffer declared as a float16 state without a word,
  so :func:`to_coreml` refuses one.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import torch

from ane_core._coremltools import coremltools
from ane_core.datatypes import ExportableModel, TensorSpec
from ane_core.passes import conversion_pipeline
from ane_core.targets import Precision
from ane_core.torch_frontend import install as install_frontend_fixes
from ane_core.validate_once import validate_once_per_pipeline


def trace(model: ExportableModel) -> torch.jit.ScriptModule:
    """Trace ``model.module`` in eval mode, without autograd, from its ``trace_inputs`` when
    it has them (short stand-ins, see :class:`ExportableModel`) or else its example inputs."""
    module = model.module.eval()
    inputs = model.trace_inputs if model.trace_inputs is not None else model.example_inputs
    with torch.no_grad():
        return torch.jit.trace(module, inputs, check_trace=False, strict=False)


def check_output_shapes(mlmodel: Any, model: ExportableModel) -> None:
    """Refuse a converted model whose output shapes differ from the declared ones.

    Why: a module traced from short ``trace_inputs`` that baked the short length somewhere
    converts without complaint into a wrong program; its output shapes give it away.
    """
    described = {
        output.name: tuple(output.type.multiArrayType.shape)
        for output in mlmodel.get_spec().description.output
    }
    for spec in model.outputs:
        if spec.name in described and described[spec.name] != tuple(spec.shape):
            raise RuntimeError(
                f"output {spec.name!r} converted with shape {described[spec.name]}, but "
                f"{tuple(spec.shape)} is declared: the module bakes an input length into its "
                "graph, so it cannot be traced from short trace_inputs"
            )


def _input_type(spec: TensorSpec, precision: Precision) -> Any:
    ct = coremltools()
    return ct.TensorType(name=spec.name, shape=spec.shape, dtype=spec.numpy_dtype(precision).type)


def _output_type(spec: TensorSpec, precision: Precision) -> Any:
    ct = coremltools()
    return ct.TensorType(name=spec.name, dtype=spec.numpy_dtype(precision).type)


def _state_type(spec: TensorSpec, module: torch.nn.Module) -> Any:
    """A float16 ``ct.StateType`` for the module's buffer ``spec.name`` (checked: float16)."""
    buffer = dict(module.named_buffers()).get(spec.name)
    if buffer is None or buffer.dtype != torch.float16 or tuple(buffer.shape) != spec.shape:
        found = "none" if buffer is None else f"{buffer.dtype} {tuple(buffer.shape)}"
        raise ValueError(
            f"state {spec.name!r} needs a float16 buffer of shape {spec.shape} registered on the "
            f"module under that name; found {found}"
        )
    ct = coremltools()
    wrapped = ct.TensorType(shape=spec.shape, dtype=np.float16)
    return ct.StateType(wrapped_type=wrapped, name=spec.name)


def to_coreml(
    traced: torch.jit.ScriptModule,
    model: ExportableModel,
    precision: Precision,
    target: Any,
    *,
    quiet: bool = True,
) -> Any:
    """Convert a traced module to an ``MLModel`` (ML program) at ``precision`` for ``target``.

    A model with :attr:`~ExportableModel.states` becomes a stateful program (``target`` must
    be macOS15/iOS18 or newer; :func:`ane_core.targets.parse_target` checks that).
    """
    ct = coremltools()
    states = {}
    if model.states:
        states["states"] = [_state_type(spec, model.module) for spec in model.states]
    compute_precision = (
        ct.precision.FLOAT16 if precision is Precision.FP16 else ct.precision.FLOAT32
    )
    # coremltools draws tqdm progress bars on stderr; our own progress display replaces them.
    sink = io.StringIO()
    redirect = contextlib.redirect_stderr(sink) if quiet else contextlib.nullcontext()
    install_frontend_fixes()
    with redirect, validate_once_per_pipeline():
        mlmodel = ct.convert(
            traced,
            source="pytorch",
            inputs=[_input_type(spec, precision) for spec in model.inputs],
            outputs=[_output_type(spec, precision) for spec in model.outputs],
            convert_to="mlprogram",
            compute_precision=compute_precision,
            minimum_deployment_target=target,
            skip_model_load=True,
            pass_pipeline=conversion_pipeline(fp16=precision is Precision.FP16),
            **states,
        )
    if model.trace_inputs is not None:
        check_output_shapes(mlmodel, model)
    return mlmodel
