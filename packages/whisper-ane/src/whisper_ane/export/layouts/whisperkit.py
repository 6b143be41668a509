"""WhisperKit's model folder (``--layout whisperkit``): ``MelSpectrogram``, ``AudioEncoder``,
``TextDecoder`` and the Hugging Face files beside them.

The contract, from argmaxinc/WhisperKit ``Sources/WhisperKit/Core``: ``WhisperKit.swift`` /
``Utilities/ModelUtilities.swift`` load the three models from the folder (a compiled
``NAME.mlmodelc`` first, else ``NAME.mlpackage``); ``FeatureExtractor.swift`` feeds
``audio`` (window = its shape[0]) and reads ``melspectrogram_features`` (mel count = shape[1]);
``AudioEncoder.swift`` feeds ``melspectrogram_features`` and reads ``encoder_output_embeds``
(embed size = shape[1], window = shape[3]); ``TextDecoder.swift`` drives ``TextDecoder`` one
token per call (see :mod:`whisper_ane.model.decoder_whisperkit` for its I/O) and reads every
output as a raw float16 buffer, so every float here is float16: the layout is FP16 only (a
float32 output would be silently misread).

Shapes and the meaning of each tensor are in :data:`LAYOUT`'s packages below; the folder is
``openai_whisper-SIZE`` by default (``--name`` replaces the whole folder name).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from ane_core.architecture import ExportableModel, Layout, LayoutPackage, LayoutPlan, TensorSpec
from ane_core.layers import MASK_VALUE

from whisper_ane.export.alignment_heads import (
    ALIGNMENT_HEADS_OPTION,
    AlignmentHeadsOption,
    format_alignment_heads,
    resolve_alignment_heads,
)
from whisper_ane.export.decoder import EXAMPLE_POSITION, checked_alignment_heads
from whisper_ane.export.encoder import build_encoder, example_mel
from whisper_ane.export.layouts.hf_files import whisperkit_files
from whisper_ane.export.materialize import component_state, materialize
from whisper_ane.model.decoder import AlignmentHeads
from whisper_ane.model.decoder_stock import StockTextDecoderStep
from whisper_ane.model.decoder_whisperkit import TextDecoderWhisperKit
from whisper_ane.model.layout_io import (
    StockChannelsFirstEncoder,
    StockLogMel,
    StockWhisperKitDecoder,
)
from whisper_ane.model.mel import N_FRAMES, N_SAMPLES, LogMelSpectrogram
from whisper_ane.weights.source import LoadedWeights
from whisper_ane.weights.vocabulary import tokenizer_for

LAYOUT = Layout(
    "whisperkit",
    "WhisperKit's model folder (default openai_whisper-SIZE): MelSpectrogram, AudioEncoder, "
    "TextDecoder, config.json, generation_config.json, tokenizer.json",
    precisions=("fp16",),
    default_precision="fp16",
    precision_note="WhisperKit reads every output as float16",
)

DEFAULT_FOLDER_PREFIX = "openai_whisper-"
"""WhisperKit's own folder names: ``openai_whisper-base``, ``openai_whisper-large-v3``."""

MEL = "MelSpectrogram"
ENCODER = "AudioEncoder"
DECODER = "TextDecoder"
PACKAGES = (MEL, ENCODER, DECODER)


def folder_name(name: str, named: bool) -> str:
    """``--name`` as given, or ``openai_whisper-`` and the model name."""
    return name if named else DEFAULT_FOLDER_PREFIX + name


def _mel_specs(weights: LoadedWeights) -> tuple[list[TensorSpec], list[TensorSpec]]:
    mel = (1, weights.dims.n_mels, 1, N_FRAMES)
    return (
        [TensorSpec("audio", (N_SAMPLES,), "30 s of 16 kHz mono samples (pad or trim)")],
        [TensorSpec("melspectrogram_features", mel, f"whisper's log-mel spectrogram {mel}")],
    )


def build_mel(weights: LoadedWeights) -> ExportableModel:
    """Audio to log-mel, as ``whisper.log_mel_spectrogram`` (see :mod:`whisper_ane.model.mel`)."""
    inputs, outputs = _mel_specs(weights)
    audio = 0.1 * torch.randn(N_SAMPLES, generator=torch.Generator().manual_seed(0))
    return ExportableModel(
        module=LogMelSpectrogram(weights.dims.n_mels).eval(),
        inputs=inputs,
        outputs=outputs,
        example_inputs=(audio,),
        metadata={"n_mels": str(weights.dims.n_mels), "call_unit": "window"},
    )


def reference_mel(weights: LoadedWeights) -> ExportableModel:
    model = build_mel(weights)
    return replace(model, module=StockLogMel(weights.dims.n_mels))


def _encoder_specs(weights: LoadedWeights) -> tuple[list[TensorSpec], list[TensorSpec]]:
    d = weights.dims
    mel = (1, d.n_mels, 1, N_FRAMES)
    out = (1, d.n_audio_state, 1, d.n_audio_ctx)
    return (
        [TensorSpec("melspectrogram_features", mel, f"log-mel spectrogram {mel}")],
        [TensorSpec("encoder_output_embeds", out, f"audio features {out}")],
    )


def build_audio_encoder(weights: LoadedWeights) -> ExportableModel:
    """The ANE encoder as it is (its I/O is already channels-first), renamed."""
    inputs, outputs = _encoder_specs(weights)
    return replace(build_encoder("ane", weights), inputs=inputs, outputs=outputs)


def reference_audio_encoder(weights: LoadedWeights) -> ExportableModel:
    """Stock ``whisper.model.AudioEncoder`` behind the same channels-first I/O."""
    inputs, outputs = _encoder_specs(weights)
    module = StockChannelsFirstEncoder(build_encoder("stock", weights).module)
    example = example_mel(weights.dims.n_mels, channels_first=True)
    return ExportableModel(module.eval(), inputs, outputs, (example,))


def _decoder_io(
    weights: LoadedWeights, heads: AlignmentHeads
) -> tuple[list[TensorSpec], list[TensorSpec], tuple[torch.Tensor, ...]]:
    """Inputs, outputs and example inputs of WhisperKit's ``TextDecoder``."""
    d = weights.dims
    L, C, S, A = d.n_text_layer, d.n_text_state, d.n_text_ctx, d.n_audio_ctx
    cache = (1, L * C, 1, S)
    inputs = [
        TensorSpec("input_ids", (1,), "this step's token", kind="int"),
        TensorSpec(
            "cache_length", (1,), "this step's position (tokens already cached)", kind="int"
        ),
        TensorSpec("key_cache", cache, f"self-attention keys, layer i in channels i*{C}.."),
        TensorSpec("value_cache", cache, f"self-attention values, layer i in channels i*{C}.."),
        TensorSpec("kv_cache_update_mask", (1, S), "one-hot at this step's position"),
        TensorSpec("encoder_output_embeds", (1, C, 1, A), "AudioEncoder's output"),
        TensorSpec(
            "decoder_key_padding_mask", (1, S), f"0 up to the position, {MASK_VALUE:g} after"
        ),
    ]
    outputs = [
        TensorSpec("logits", (1, 1, d.n_vocab), "next-token logits"),
        TensorSpec(
            "key_cache_updates", (1, L * C, 1, 1), "this step's keys: write at cache_length"
        ),
        TensorSpec(
            "value_cache_updates", (1, L * C, 1, 1), "this step's values: write at cache_length"
        ),
    ]
    if heads:
        outputs.append(
            TensorSpec(
                "alignment_heads_weights",
                (1, A),
                "mean over the alignment heads "
                + format_alignment_heads(heads)
                + " of this step's cross-attention weights, for word timestamps",
            )
        )
    generator = torch.Generator().manual_seed(0)
    update = torch.zeros(1, S)
    update[0, EXAMPLE_POSITION] = 1.0
    padding = torch.full((1, S), MASK_VALUE)
    padding[0, : EXAMPLE_POSITION + 1] = 0.0
    example = (
        torch.tensor([tokenizer_for(d.n_vocab).sot], dtype=torch.int32),
        torch.tensor([EXAMPLE_POSITION], dtype=torch.int32),
        torch.randn(cache, generator=generator),
        torch.randn(cache, generator=generator),
        update,
        torch.randn(1, C, 1, A, generator=generator),
        padding,
    )
    return inputs, outputs, example


def _heads(weights: LoadedWeights, option: AlignmentHeadsOption) -> AlignmentHeads:
    return checked_alignment_heads(resolve_alignment_heads(option, weights), weights)


def _decoder_module(cls: type, weights: LoadedWeights, heads: AlignmentHeads) -> Any:
    """``cls`` (the ANE step or the stock one: same constructor) with the decoder weights."""
    d = weights.dims
    dims = (d.n_vocab, d.n_text_ctx, d.n_text_state, d.n_text_head, d.n_text_layer)
    return materialize(
        lambda: cls(*dims, alignment_heads=heads), component_state(weights, "decoder.")
    )


def build_text_decoder(weights: LoadedWeights, option: AlignmentHeadsOption) -> ExportableModel:
    """The ANE decoder step with WhisperKit's I/O (:class:`TextDecoderWhisperKit`)."""
    d = weights.dims
    heads = _heads(weights, option)
    module = _decoder_module(TextDecoderWhisperKit, weights, heads)
    inputs, outputs, example = _decoder_io(weights, heads)
    metadata = {
        "n_vocab": str(d.n_vocab),
        "n_text_ctx": str(d.n_text_ctx),
        "n_text_layer": str(d.n_text_layer),
        "n_text_state": str(d.n_text_state),
        "alignment_heads": format_alignment_heads(heads),
        "call_unit": "token",
    }
    return ExportableModel(module, inputs, outputs, example, metadata=metadata)


def reference_text_decoder(weights: LoadedWeights, option: AlignmentHeadsOption) -> ExportableModel:
    heads = _heads(weights, option)
    step = _decoder_module(StockTextDecoderStep, weights, heads)
    inputs, outputs, example = _decoder_io(weights, heads)
    return ExportableModel(StockWhisperKitDecoder(step).eval(), inputs, outputs, example)


BUILD_OPTIONS: tuple[str, ...] = ("alignment_heads",)
"""The build options this layout takes (see :func:`whisper_ane.export.layouts.layout_plan`)."""

REFUSED_OPTIONS: dict[str, str] = {
    # argmaxinc/WhisperKit Sources/WhisperKit/Core/TextDecoder.swift: prepareDecoderInputs
    # makes `inputIds` an MLMultiArray of shape [1], dataType .int32, and predictLogits passes
    # it as TextDecoderInput(input_ids: ...), the token id; no embedding row goes in.
    "embedding": "WhisperKit's TextDecoder.swift feeds the TextDecoder the token id "
    "input_ids, int32 (1,), so its contract has no embedding input",
}
"""Options the app's contract rules out, with the reason the refusal gives."""


def plan(
    name: str,
    *,
    named: bool = False,
    alignment_heads: AlignmentHeadsOption = ALIGNMENT_HEADS_OPTION.default,
    **options: Any,
) -> LayoutPlan:
    """The folder, its three packages and its files; ``alignment_heads`` as the native
    decoder's build option (``none``: no ``alignment_heads_weights``, so WhisperKit turns
    word timestamps off)."""

    def files(weights: LoadedWeights) -> dict[str, bytes]:
        return whisperkit_files(weights, _heads(weights, alignment_heads))

    def notes(weights: LoadedWeights) -> list[str]:
        lines = []
        if "tokenizer.json" not in files(weights):
            lines.append(
                "the weight source has no tokenizer.json: WhisperKit downloads one "
                "(pass a CTranslate2 or Hugging Face directory to ship it in the folder)"
            )
        if not _heads(weights, alignment_heads):
            lines.append("no alignment heads: WhisperKit turns word timestamps off")
        return lines

    packages = [
        LayoutPackage(MEL, f"{MEL}.mlpackage", build_mel, reference_mel),
        LayoutPackage(
            ENCODER, f"{ENCODER}.mlpackage", build_audio_encoder, reference_audio_encoder
        ),
        LayoutPackage(
            DECODER,
            f"{DECODER}.mlpackage",
            lambda weights: build_text_decoder(weights, alignment_heads),
            lambda weights: reference_text_decoder(weights, alignment_heads),
        ),
    ]
    return LayoutPlan(
        LAYOUT.name, packages, root=folder_name(name, named), files=files, notes=notes
    )
