"""The ANE decoder step under WhisperKit's ``TextDecoder`` I/O contract.

The contract (argmaxinc/WhisperKit ``Sources/WhisperKit/Core/TextDecoder.swift``, as
whisperkittools' ``whisperkit/text_decoder.py`` exports it):

* in: ``input_ids`` ``(1,)`` int32, ``cache_length`` ``(1,)`` int32 (the position),
  ``key_cache`` / ``value_cache`` ``(1, C * n_layer, 1, 448)`` with layer ``i`` in channels
  ``i*C .. (i+1)*C``, ``kv_cache_update_mask`` ``(1, 448)`` one-hot at the position,
  ``encoder_output_embeds`` ``(1, C, 1, 1500)``, ``decoder_key_padding_mask`` ``(1, 448)``
  (0 attend, -10000 masked);
* out: ``logits`` ``(1, 1, n_vocab)`` (rank 3: WhisperKit reads the vocabulary size from axis
  2), ``key_cache_updates`` / ``value_cache_updates`` ``(1, C * n_layer, 1, 1)`` (the app
  copies them into column ``cache_length``), and with alignment heads
  ``alignment_heads_weights`` ``(1, 1500)``: the mean over those heads of this step's
  post-softmax cross-attention weights (whisperkittools'
  ``torch.cat(weights, dim=1).mean(dim=1)``).

What is reused: the blocks and their one-query step (:class:`TextDecoderANE`, with the
cache blended with this step's key/value through the one-hot mask before attending, which
is what WhisperKit expects: it writes the update only after the call), the token lookup and
logits on one vocabulary table (stored once), the alignment-head pick.

What differs from the native decoder:

* No cross-attention input exists in the contract, so each layer projects
  ``encoder_output_embeds`` with its own ``cross_attn.key`` / ``cross_attn.value`` at every
  token: ``2 * n_layer * C^2 * 1500`` multiply-adds per token that the native layout spends
  once per window (its ``cross_kv`` model).
* One ``logits`` tensor, so one ``(n_vocab, C, 1, 1)`` table serves the token gather and the
  single 1x1 conv (the native decoder splits it under the ANE's 16384 limit; WhisperKit's
  rank-3 contract takes the whole vocabulary on one axis).
* ``cache_length`` is declared as the contract says but not read: the one-hot
  ``kv_cache_update_mask`` already selects the positional embedding (a matmul, no integer
  compute). coremltools keeps an unread input in the model's description (it passes it
  through an ``identity``), so WhisperKit's feature provider matches.
"""

from __future__ import annotations

import torch
from torch import Tensor

from whisper_ane.model.decoder import AlignmentHeads, LayerInputs, TextDecoderANE


class TextDecoderWhisperKit(TextDecoderANE):
    """One decoding step with WhisperKit's inputs and outputs (see the module docstring).

    Same parameters (and names) as :class:`TextDecoderANE` with unsplit logits, so a stock
    state dict loads strictly; here ``cross_attn.key`` / ``cross_attn.value`` are used.
    """

    def __init__(
        self,
        n_vocab: int,
        n_ctx: int,
        n_state: int,
        n_head: int,
        n_layer: int,
        *,
        alignment_heads: AlignmentHeads = (),
    ) -> None:
        super().__init__(
            n_vocab,
            n_ctx,
            n_state,
            n_head,
            n_layer,
            split_logits=False,
            alignment_heads=alignment_heads,
        )
        self.n_state = n_state

    def forward(  # type: ignore[override]
        self,
        input_ids: Tensor,
        cache_length: Tensor,
        key_cache: Tensor,
        value_cache: Tensor,
        kv_cache_update_mask: Tensor,
        encoder_output_embeds: Tensor,
        decoder_key_padding_mask: Tensor,
    ) -> tuple[Tensor, ...]:
        tables = self.vocabulary_tables()  # one (n_vocab, C, 1, 1) table
        x, update, keep = self.embed(input_ids, kv_cache_update_mask, tables)
        C = self.n_state

        def layer(i: int) -> LayerInputs:
            cross = self.blocks[i].cross_attn
            channels = slice(i * C, (i + 1) * C)
            return (
                key_cache[:, channels].to(x.dtype),
                value_cache[:, channels].to(x.dtype),
                cross.key(encoder_output_embeds),
                cross.value(encoder_output_embeds),
            )

        x, steps = self.run_layers(x, layer, update, keep, decoder_key_padding_mask)
        (logits,) = self.project(x, tables)  # (1, n_vocab, 1, 1): the same memory as (1, 1, V)
        outputs = (
            logits.reshape(1, 1, -1),
            torch.cat([step.key for step in steps], dim=1),  # (1, n_layer * C, 1, 1)
            torch.cat([step.value for step in steps], dim=1),
        )
        if not self.alignment_heads:
            return outputs
        (weights,) = self.alignment_outputs(steps)  # (1, H_a, 1, n_audio_ctx)
        return (*outputs, weights.mean(dim=1).flatten(1))  # (1, n_audio_ctx)
