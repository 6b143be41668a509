"""Whisper's modules behind the I/O of the apps' layouts: the ANE encoder in whisper.cpp's
layout, and the stock computations that ``ane parity --layout`` compares each layout
package with (same inputs, same outputs, computed the original way).

Why wrappers and not new models: a layout changes names, shapes and dtypes at the edges,
never the computation, so the ANE modules (:class:`AudioEncoderANE`,
:class:`~whisper_ane.model.decoder_whisperkit.TextDecoderWhisperKit`) and the stock ones
(``whisper.model.AudioEncoder``, :class:`StockTextDecoderStep`,
``whisper.log_mel_spectrogram``) are used as they are, with only the layout changes here.
"""

from __future__ import annotations

import torch
import whisper.audio
import whisper.model
from ane_core.layers import static_size
from torch import Tensor, nn

from whisper_ane.model.decoder_stock import StockTextDecoderStep
from whisper_ane.model.encoder import AudioEncoderANE


class SequenceFirstEncoder(nn.Module):
    """whisper.cpp's encoder I/O (``src/coreml/whisper-encoder.mm``) around the ANE encoder:
    mel ``(1, n_mels, 3000)`` in, features ``(1, 1500, n_state)`` out, which whisper.cpp
    copies as its ``n_state x 1500`` float32 tensor.

    The reshapes only add and drop the unit axis and swap two axes, so the graph still never
    reads the frame count and traces from a few frames as the ANE encoder does.
    """

    def __init__(self, encoder: AudioEncoderANE) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, logmel_data: Tensor) -> Tensor:
        features = self.encoder(logmel_data[:, :, None, :])  # (1, C, 1, 1500)
        return features[:, :, 0, :].transpose(1, 2)


class StockLogMel(nn.Module):
    """``whisper.log_mel_spectrogram`` of ``(480000,)`` samples, as ``(1, n_mels, 1, 3000)``."""

    def __init__(self, n_mels: int) -> None:
        super().__init__()
        self.n_mels = n_mels

    def forward(self, audio: Tensor) -> Tensor:
        return whisper.audio.log_mel_spectrogram(audio.float(), self.n_mels)[None, :, None, :]


class StockChannelsFirstEncoder(nn.Module):
    """``whisper.model.AudioEncoder`` with WhisperKit's channels-first I/O:
    ``(1, n_mels, 1, 3000)`` to ``(1, n_state, 1, 1500)``."""

    def __init__(self, encoder: whisper.model.AudioEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, mel: Tensor) -> Tensor:
        return self.encoder(mel[:, :, 0, :]).transpose(1, 2)[:, :, None, :]


class StockWhisperKitDecoder(nn.Module):
    """Stock whisper's decoder step with WhisperKit's ``TextDecoder`` I/O (see
    :mod:`whisper_ane.model.decoder_whisperkit`): whisper's own blocks project the cross
    K/V from ``encoder_output_embeds`` and run the step on the caches in whisper's
    ``(n_layer, S, C)`` layout; outputs are brought back to WhisperKit's shapes, and the
    alignment heads' weights averaged as whisperkittools does."""

    def __init__(self, step: StockTextDecoderStep) -> None:
        super().__init__()
        self.step = step

    def forward(
        self,
        input_ids: Tensor,
        cache_length: Tensor,
        key_cache: Tensor,
        value_cache: Tensor,
        kv_cache_update_mask: Tensor,
        encoder_output_embeds: Tensor,
        decoder_key_padding_mask: Tensor,
    ) -> tuple[Tensor, ...]:
        features = encoder_output_embeds[:, :, 0, :].transpose(1, 2)  # (1, 1500, C)
        blocks = self.step.blocks
        cross_k = torch.cat([block.cross_attn.key(features) for block in blocks])
        cross_v = torch.cat([block.cross_attn.value(features) for block in blocks])
        n_layer, C = len(blocks), static_size(features, 2)

        def whisper_layout(cache: Tensor) -> Tensor:  # (1, L*C, 1, S) -> (L, S, C)
            return cache.reshape(n_layer, C, -1).transpose(1, 2)

        logits, keys, values, *alignment = self.step(
            input_ids,
            whisper_layout(key_cache),
            whisper_layout(value_cache),
            kv_cache_update_mask,
            decoder_key_padding_mask,
            cross_k,
            cross_v,
        )
        # (L, 1, C) -> (1, L*C, 1, 1): layer i in channels i*C..(i+1)*C
        outputs = (logits, keys.reshape(1, -1, 1, 1), values.reshape(1, -1, 1, 1))
        if not alignment:
            return outputs
        return (*outputs, alignment[0].mean(dim=1).flatten(1))
