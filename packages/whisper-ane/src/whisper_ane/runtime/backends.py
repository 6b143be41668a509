"""What the decoding loop runs: three components with named NumPy inputs and outputs.

Why NumPy and names: an exported ``.mlpackage`` is called as ``predict({name: array}) ->
{name: array}``. Giving the PyTorch modules the same calling convention (the
:class:`ComponentRunner` interface) means the loop in :mod:`whisper_ane.runtime.decoding` drives the
stock modules, the ANE modules and, later, the exported packages (a MIL executor or Core ML)
through one code path, with the I/O names of :mod:`whisper_ane.export.decoder`:

* ``encoder``: ``mel`` -> ``encoder_output``
* ``cross_kv``: ``encoder_output`` -> ``cross_k``, ``cross_v``
* ``decoder``: ``token`` (or, built with ``--embedding host``, ``token_embedding``),
  ``key_cache``, ``value_cache``, ``kv_cache_update_mask``, ``key_padding_mask``,
  ``cross_k``, ``cross_v`` -> ``logits`` (or ``logits_0..N``), ``key_cache_update``,
  ``value_cache_update``

A new backend (e.g. ``mil``) only has to supply three :class:`ComponentRunner` objects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from ane_core.architecture import ExportableModel, TensorSpec
from ane_core.errors import UsageError
from ane_core.targets import Precision
from whisper.model import ModelDimensions

from whisper_ane.export.components import COMPONENTS, build_component
from whisper_ane.weights.source import LoadedWeights

TORCH_BACKENDS = {"torch-ane": "ane", "torch-stock": "stock"}
"""Backend name -> the architecture variant whose PyTorch modules it runs."""


class ComponentRunner(ABC):
    """One model: named arrays in, named arrays out, as Core ML's ``predict`` does.

    ``inputs`` / ``outputs`` describe the I/O (shapes fixed); float inputs are passed in
    :attr:`float_dtype` (float16 for an FP16 model), int inputs as int32.
    """

    inputs: Sequence[TensorSpec]
    outputs: Sequence[TensorSpec]
    float_dtype: np.dtype

    metadata: Mapping[str, str] = {}
    """The build's metadata (e.g. the decoder's ``alignment_heads``)."""

    @abstractmethod
    def __call__(
        self, inputs: Mapping[str, np.ndarray], state: Any = None
    ) -> dict[str, np.ndarray]:
        """Run once; ``inputs`` holds every input name, the result every output name.
        ``state``: a stateful model's state (from :meth:`new_state`), updated in place."""

    state_names: Sequence[str] = ()
    """The model's Core ML states (none for a model without state)."""

    def new_state(self) -> Any:
        """Fresh state for one sequence of a stateful model (caches kept inside it, as Core
        ML state), or ``None`` for a model without state. Each decoding sequence owns one,
        so several sequences (best-of-N sampling) can share the model."""
        return None

    def write_state(self, state: Any, name: str, value: np.ndarray) -> None:
        """Fill state variable ``name`` of ``state`` before a call, as an app does through
        ``MLState`` (e.g. a decoder's cross-attention K/V, once per window)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no state")

    def token_table(self) -> np.ndarray:
        """The token embedding ``(n_vocab, C)`` in :attr:`float_dtype` that a decoder built
        with ``--embedding host`` takes its ``token_embedding`` rows from (the caller looks
        them up, see :mod:`whisper_ane.export.host_embedding`)."""
        raise NotImplementedError(f"{type(self).__name__} ships no token embedding table")

    def input_spec(self, name: str) -> TensorSpec:
        return _spec(self.inputs, name)

    def output_spec(self, name: str) -> TensorSpec:
        return _spec(self.outputs, name)


def _spec(specs: Sequence[TensorSpec], name: str) -> TensorSpec:
    for spec in specs:
        if spec.name == name:
            return spec
    raise KeyError(f"no tensor named {name!r} among {[s.name for s in specs]}")


class TorchRunner(ComponentRunner):
    """A built :class:`ExportableModel` (the module that would be traced), run eagerly.

    The module is cast to ``precision`` once; inputs are wrapped with ``torch.from_numpy``
    (no copy when the dtype already fits) and outputs returned as NumPy arrays.
    """

    def __init__(self, model: ExportableModel, precision: Precision) -> None:
        self.inputs = tuple(model.inputs)
        self.outputs = tuple(model.outputs)
        self.metadata = dict(model.metadata)
        self.float_dtype = np.dtype(precision.numpy_dtype)
        self._torch_dtype = precision.torch_dtype
        self.module = model.module.to(self._torch_dtype).eval()

    def __call__(
        self, inputs: Mapping[str, np.ndarray], state: Any = None
    ) -> dict[str, np.ndarray]:
        args = []
        for spec in self.inputs:
            dtype = np.int32 if spec.kind == "int" else self.float_dtype
            args.append(torch.from_numpy(np.ascontiguousarray(inputs[spec.name], dtype=dtype)))
        with torch.inference_mode():
            result = self.module(*args)
        results = result if isinstance(result, tuple) else (result,)
        if len(results) != len(self.outputs):
            raise RuntimeError(f"{len(results)} outputs but {len(self.outputs)} output specs")
        return {spec.name: t.numpy() for spec, t in zip(self.outputs, results, strict=True)}

    def token_table(self) -> np.ndarray:
        """The module's own token embedding (the tied logits weights), cast as the module is,
        so its rows equal those of the table an export in this precision ships."""
        return self.module.token_embedding.weight.detach().numpy()


@dataclass
class WhisperBackend:
    """The three components of one Whisper model, as the decoding loop needs them."""

    name: str
    dims: ModelDimensions
    encoder: ComponentRunner
    cross_kv: ComponentRunner
    decoder: ComponentRunner


def torch_backend(
    name: str, weights: LoadedWeights, precision: Precision = Precision.FP32, **decoder_options
) -> WhisperBackend:
    """``torch-ane`` or ``torch-stock``: the modules an export of that variant would trace.

    ``decoder_options`` go to the decoder build (e.g. ``split_logits=False``).
    """
    variant = TORCH_BACKENDS.get(name)
    if variant is None:
        raise UsageError(f"unknown backend {name!r}.", f"Use one of: {', '.join(TORCH_BACKENDS)}.")
    if variant == "stock" and precision is Precision.FP16:
        raise UsageError(
            "torch-stock runs in fp32 only: whisper's LayerNorm mixes float32 activations with "
            "float16 weights, which PyTorch's CPU kernels refuse.",
            "Use --precision fp32, or --backend torch-ane for fp16.",
        )
    runners = {
        component: TorchRunner(
            build_component(
                component, variant, weights, **(decoder_options if component == "decoder" else {})
            ),
            precision,
        )
        for component in COMPONENTS
    }
    return WhisperBackend(name=name, dims=weights.dims, **runners)
