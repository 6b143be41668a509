"""whisper.cpp's Core ML encoder (``--layout whispercpp``): ``ggml-NAME-encoder.mlpackage``.

The contract, from ggml-org/whisper.cpp:

* ``src/whisper.cpp`` ``whisper_get_coreml_path_encoder``: beside ``ggml-NAME.bin`` (the
  extension and a 5-character ``-qX_Y`` quantisation suffix stripped) it loads
  ``ggml-NAME-encoder.mlmodelc``; ``models/generate-coreml-model.sh`` makes that with
  ``xcrun coremlc compile`` from the converter's package;
* ``src/coreml/whisper-encoder.mm``: input ``logmel_data``, a float32 ``MLMultiArray`` of
  shape ``(1, n_mels, n_ctx=3000)``; it reads feature ``output`` and copies (``memcpy``)
  ``output.count`` floats into a ggml float32 tensor of ``n_state x 1500``, i.e. a
  C-contiguous float32 ``(1, 1500, n_state)``;
* ``models/convert-whisper-to-coreml.py`` ``convert_encoder``: ``ct.TensorType(name=
  "logmel_data", shape=(1, n_mels, 3000))`` in, ``ct.TensorType(name="output")`` out, FLOAT32
  compute precision by default (which Core ML runs on the GPU, not the Neural Engine).

Here: the ANE encoder inside, float32 at both edges whatever ``--precision`` says, which
sets only the compute precision: FP16 (default) runs on the Neural Engine, and coremltools
adds exactly two ``cast`` ops, one per edge; FP32 is what whisper.cpp's own converter makes.
"""

from __future__ import annotations

from typing import Any

from ane_core.architecture import ExportableModel, Layout, LayoutPackage, LayoutPlan, TensorSpec

from whisper_ane.export.encoder import N_SAMPLES_FRAMES, build_encoder
from whisper_ane.model.layout_io import SequenceFirstEncoder
from whisper_ane.weights.source import LoadedWeights

LAYOUT = Layout(
    "whispercpp",
    "whisper.cpp's Core ML encoder: ggml-NAME-encoder.mlpackage (logmel_data -> output), "
    "to compile to ggml-NAME-encoder.mlmodelc beside ggml-NAME.bin",
    precisions=("fp32", "fp16"),
    default_precision="fp16",
    precision_note="the compute precision; the I/O is float32 either way, as whisper.cpp "
    "passes and copies it",
)


def package_path(name: str) -> str:
    """``ggml-base.en-encoder.mlpackage``: compiled, the name whisper.cpp looks for."""
    return f"ggml-{name}-encoder.mlpackage"


def _specs(weights: LoadedWeights) -> tuple[list[TensorSpec], list[TensorSpec]]:
    d = weights.dims
    mel = (1, d.n_mels, N_SAMPLES_FRAMES)
    out = (1, d.n_audio_ctx, d.n_audio_state)
    inputs = [TensorSpec("logmel_data", mel, f"log-mel spectrogram {mel}", kind="float32")]
    outputs = [
        TensorSpec("output", out, f"encoder features {out}, C-contiguous float32", kind="float32")
    ]
    return inputs, outputs


def build(weights: LoadedWeights) -> ExportableModel:
    """The ANE encoder behind whisper.cpp's I/O; it still traces from a few frames."""
    encoder = build_encoder("ane", weights)
    inputs, outputs = _specs(weights)
    mel = encoder.example_inputs[0][:, :, 0, :]  # (1, n_mels, 3000)
    short = encoder.trace_inputs[0][:, :, 0, :] if encoder.trace_inputs else None
    return ExportableModel(
        module=SequenceFirstEncoder(encoder.module).eval(),
        inputs=inputs,
        outputs=outputs,
        example_inputs=(mel,),
        metadata={**encoder.metadata, "app": "whisper.cpp (WHISPER_COREML=1)"},
        trace_inputs=None if short is None else (short,),
    )


def reference(weights: LoadedWeights) -> ExportableModel:
    """Stock ``whisper.model.AudioEncoder``: it already has whisper.cpp's layout."""
    stock = build_encoder("stock", weights)
    inputs, outputs = _specs(weights)
    return ExportableModel(stock.module, inputs, outputs, stock.example_inputs)


BUILD_OPTIONS: tuple[str, ...] = ()
"""The build options this layout takes (see :func:`whisper_ane.export.layouts.layout_plan`)."""


def plan(name: str, **options: Any) -> LayoutPlan:
    """One package at the top of the output directory (build options do not apply)."""
    return LayoutPlan(LAYOUT.name, [LayoutPackage("encoder", package_path(name), build, reference)])
