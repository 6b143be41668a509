"""Exportable builds of the audio encoder, stock and ANE, from loaded weights.

The ANE encoder takes the mel channels-first, ``(1, n_mels, 1, 3000)``, and returns
``(1, n_audio_state, 1, 1500)``; the stock one keeps whisper's ``(1, n_mels, 3000)`` ->
``(1, 1500, n_audio_state)``. Both are named ``mel`` -> ``encoder_output``.
"""

from __future__ import annotations

import torch
import whisper.model
from ane_core.architecture import ExportableModel, TensorSpec

from whisper_ane.export.decoder import TRACE_FRAMES
from whisper_ane.export.materialize import component_state, materialize
from whisper_ane.model.encoder import AudioEncoderANE
from whisper_ane.weights.source import LoadedWeights

N_SAMPLES_FRAMES = 3000
"""Mel frames in one 30 s window (whisper.audio.N_FRAMES)."""


def example_mel(n_mels: int, *, channels_first: bool, seed: int = 0) -> torch.Tensor:
    """A deterministic log-mel-like tensor in Whisper's value range, for tracing."""
    generator = torch.Generator().manual_seed(seed)
    mel = torch.rand(1, n_mels, N_SAMPLES_FRAMES, generator=generator) * 2.0 - 1.0
    return mel.unsqueeze(2) if channels_first else mel


TRACE_MEL_FRAMES = 2 * TRACE_FRAMES
"""Mel frames the ANE encoder is traced from: the stride-2 conv turns them into the
:data:`~whisper_ane.export.decoder.TRACE_FRAMES` audio frames ``cross_kv`` traces from. Its
graph does not depend on the length, so a 16-frame trace gives the same program as the
3000-frame input it is converted for, in a fraction of a second instead of a full forward
pass (about 10 s for medium). Stock whisper's encoder asserts the full length, so it traces
at 3000."""


def build_encoder(variant: str, weights: LoadedWeights) -> ExportableModel:
    """Stock ``whisper.model.AudioEncoder`` or :class:`AudioEncoderANE` with the same weights."""
    d = weights.dims
    state = component_state(weights, "encoder.")
    shape_info = {
        "n_mels": str(d.n_mels),
        "n_audio_ctx": str(d.n_audio_ctx),
        "n_audio_state": str(d.n_audio_state),
        "n_audio_head": str(d.n_audio_head),
        "n_audio_layer": str(d.n_audio_layer),
        "call_unit": "window",  # one call per 30 s window (ane inspect's per-call figures)
    }
    if variant == "ane":
        module = materialize(
            lambda: AudioEncoderANE(
                d.n_mels, d.n_audio_ctx, d.n_audio_state, d.n_audio_head, d.n_audio_layer
            ),
            state,
        )
        mel_shape: tuple[int, ...] = (1, d.n_mels, 1, N_SAMPLES_FRAMES)
        out_shape: tuple[int, ...] = (1, d.n_audio_state, 1, d.n_audio_ctx)
        layout = "channels-first (batch, channels, 1, frames)"
    else:
        module = materialize(
            lambda: whisper.model.AudioEncoder(
                d.n_mels, d.n_audio_ctx, d.n_audio_state, d.n_audio_head, d.n_audio_layer
            ),
            state,
        )
        mel_shape = (1, d.n_mels, N_SAMPLES_FRAMES)
        out_shape = (1, d.n_audio_ctx, d.n_audio_state)
        layout = "sequence-first (batch, frames, channels)"
    example = example_mel(d.n_mels, channels_first=variant == "ane")
    return ExportableModel(
        module=module,
        inputs=[
            TensorSpec("mel", mel_shape, f"log-mel spectrogram of one 30 s window, {mel_shape}")
        ],
        outputs=[TensorSpec("encoder_output", out_shape, f"audio features, {layout}, {out_shape}")],
        example_inputs=(example,),
        metadata=shape_info,
        trace_inputs=(example[..., :TRACE_MEL_FRAMES],) if variant == "ane" else None,
    )
