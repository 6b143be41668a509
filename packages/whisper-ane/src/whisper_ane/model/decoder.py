"""Whisper's text decoder for the Apple Neural Engine: one token per call, static shapes.

Why this shape: the ANE compiles a model for fixed tensor shapes, and Core ML's flexible
shapes (``RangeDim``) break the split-einsum attention of the known ANE Whisper port
(coremltools issue #1763). So, as on-device ASR does in production, every shape here is
fixed and the key/value cache lives outside the model:

* ``key_cache`` / ``value_cache`` ``(n_layer, C, 1, n_ctx)``: every layer's self-attention
  keys and values for all ``n_ctx`` (448) positions, layer ``i`` in row ``i`` (each row is a
  channels-first ``(1, C, 1, S)`` tensor; stacking on axis 0 keeps every dimension below the
  ANE's 16384 limit even for large-v3, whose 32 x 1280 channels would not fit on axis 1).
* ``kv_cache_update_mask`` ``(1, n_ctx)``: one-hot at the current position. It blends this
  step's key/value into the cache read (``cache * (1 - m) + new * m``) and selects the
  positional embedding by a matmul, so the model needs no integer position, no gather on
  positions and no dtype conversion.
* ``key_padding_mask`` ``(1, n_ctx)``: additive, 0 up to the current position and
  ``MASK_VALUE`` after it (a static cache is causal by masking, not by length).
* ``cross_k`` / ``cross_v`` ``(n_layer, C, 1, n_audio_ctx)``: the cross-attention keys and
  values, computed once per 30 s window by :class:`TextCrossAttentionKV` instead of
  projecting the 1500 audio frames again at every token.

Both attentions have a single query, so they use
:func:`ane_core.layers.single_query_attention` (heads as channel groups, 7 ops per attention
instead of about 4 per head with the encoder's split einsum; it reads the cache layout
directly, with no key transpose).

Outputs are the logits and only this position's new keys and values ``(n_layer, C, 1, 1)``;
the caller writes them into its cache, so no cache is copied through the model per step.
The vocabulary (51864-51866 tokens) is above the ANE's 16384 limit on one dimension, so the
tied-embedding projection is split into chunks (``logits_0..N``, each below the limit) by
default; ``split_logits=False`` gives one ``logits`` tensor with the same values.

Parameter names equal openai-whisper's ``TextDecoder`` ones, so a stock state dict loads
unchanged. ``cross_attn.key`` / ``cross_attn.value`` load into the decoder too (strict
loading) but only :class:`TextCrossAttentionKV` uses them.
"""

from __future__ import annotations

import torch
from ane_core.layers import (
    LayerNormANE,
    LinearConv2d,
    MultiHeadAttentionANE,
    chunked_linear_conv2d,
    single_query_attention,
)
from torch import Tensor, nn

from whisper_ane.model.encoder import ResidualAttentionBlockANE


class TextDecoderBlockANE(ResidualAttentionBlockANE):
    """Self-attention over the static cache, cross-attention on precomputed K/V, MLP."""

    def __init__(self, n_state: int, n_head: int) -> None:
        super().__init__(n_state, n_head)
        self.cross_attn = MultiHeadAttentionANE(n_state, n_head, k_bias=False)
        self.cross_attn_ln = LayerNormANE(n_state)

    def forward(  # type: ignore[override]
        self,
        x: Tensor,
        key_cache: Tensor,
        value_cache: Tensor,
        update: Tensor,
        keep: Tensor,
        key_padding_mask: Tensor,
        cross_k: Tensor,
        cross_v: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One position: ``x`` ``(1, C, 1, 1)``; caches ``(1, C, 1, S)``; ``update``/``keep``
        ``(1, 1, 1, S)`` (one-hot and its complement). Returns ``x`` and this step's k, v."""
        x, k, v, _, _ = self.step(
            x, key_cache, value_cache, update, keep, key_padding_mask, cross_k, cross_v
        )
        return x, k, v

    def step(
        self,
        x: Tensor,
        key_cache: Tensor,
        value_cache: Tensor,
        update: Tensor,
        keep: Tensor,
        key_padding_mask: Tensor,
        cross_k: Tensor,
        cross_v: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """:meth:`forward` plus the updated caches ``(1, C, 1, S)`` that attention read (a
        stateful decoder stores them; the external-cache one leaves that to its caller)."""
        attn = self.attn
        h = self.attn_ln(x)
        q, k, v = attn.query(h), attn.key(h), attn.value(h)
        keys = key_cache * keep + k * update
        values = value_cache * keep + v * update
        a = single_query_attention(q, keys, values, attn.n_heads, key_padding_mask=key_padding_mask)
        x = x + attn.out(a)
        cross = self.cross_attn
        q = cross.query(self.cross_attn_ln(x))
        x = x + cross.out(single_query_attention(q, cross_k, cross_v, cross.n_heads))
        x = x + self.mlp(self.mlp_ln(x))
        return x, k, v, keys, values


class TextDecoderANE(nn.Module):
    """One decoding step of Whisper's ``TextDecoder`` with an external static KV cache.

    See the module docstring for the inputs and outputs. ``forward`` returns a flat tuple
    ``(*logits, key_cache_update, value_cache_update)``: the logits chunks ``(1, n_i, 1, 1)``
    (or one ``(1, n_vocab, 1, 1)`` with ``split_logits=False``).
    """

    def __init__(
        self,
        n_vocab: int,
        n_ctx: int,
        n_state: int,
        n_head: int,
        n_layer: int,
        *,
        split_logits: bool = True,
    ) -> None:
        super().__init__()
        self.n_ctx = n_ctx
        self.split_logits = split_logits
        self.token_embedding = nn.Embedding(n_vocab, n_state)
        self.positional_embedding = nn.Parameter(torch.empty(n_ctx, n_state))
        self.blocks = nn.ModuleList(TextDecoderBlockANE(n_state, n_head) for _ in range(n_layer))
        self.ln = LayerNormANE(n_state)

    def forward(
        self,
        token: Tensor,
        key_cache: Tensor,
        value_cache: Tensor,
        kv_cache_update_mask: Tensor,
        key_padding_mask: Tensor,
        cross_k: Tensor,
        cross_v: Tensor,
    ) -> tuple[Tensor, ...]:
        x, update, keep = self.embed(token, kv_cache_update_mask)
        keys, values = [], []
        for i, block in enumerate(self.blocks):
            x, k, v = block(
                x,
                key_cache[i : i + 1],
                value_cache[i : i + 1],
                update,
                keep,
                key_padding_mask,
                cross_k[i : i + 1],
                cross_v[i : i + 1],
            )
            keys.append(k)
            values.append(v)
        return (*self.project(x), torch.cat(keys, dim=0), torch.cat(values, dim=0))

    def embed(self, token: Tensor, kv_cache_update_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Token plus positional embedding ``(1, C, 1, 1)``, and the one-hot ``update`` mask
        ``(1, 1, 1, S)`` with its complement ``keep``, for the blocks."""
        positional = kv_cache_update_mask @ self.positional_embedding  # (1, C), one-hot select
        x = (self.token_embedding(token) + positional)[:, :, None, None]  # (1, C, 1, 1)
        update = kv_cache_update_mask[:, None, None, :]  # (1, 1, 1, S)
        return x, update, 1.0 - update

    def project(self, x: Tensor) -> tuple[Tensor, ...]:
        """Final LayerNorm and the tied-embedding logits, as chunks (or one tensor)."""
        x = self.ln(x)
        logits = chunked_linear_conv2d(x, self.token_embedding.weight, concat=not self.split_logits)
        return logits if isinstance(logits, tuple) else (logits,)


class _KeyValueProjection(nn.Module):
    """The ``key`` and ``value`` 1x1 convs of one cross-attention (names as in whisper)."""

    def __init__(self, n_state: int) -> None:
        super().__init__()
        self.key = LinearConv2d(n_state, n_state, bias=False)
        self.value = LinearConv2d(n_state, n_state)


class _CrossKVBlock(nn.Module):
    def __init__(self, n_state: int) -> None:
        super().__init__()
        self.cross_attn = _KeyValueProjection(n_state)


class TextCrossAttentionKV(nn.Module):
    """Encoder output ``(1, C, 1, n_audio_ctx)`` to every decoder layer's cross-attention
    keys and values, ``(n_layer, C, 1, n_audio_ctx)`` each.

    Why a separate model: these projections depend only on the audio, so computing them once
    per window costs ``2 * n_layer * C^2 * 1500`` multiply-adds once, where doing it inside the
    decoder would cost that at every token (tiny: 1.8 GMAC per token, against about 0.03 GMAC
    for the rest of a decoding step).
    """

    def __init__(self, n_state: int, n_layer: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(_CrossKVBlock(n_state) for _ in range(n_layer))

    def forward(self, encoder_output: Tensor) -> tuple[Tensor, Tensor]:
        keys = [block.cross_attn.key(encoder_output) for block in self.blocks]
        values = [block.cross_attn.value(encoder_output) for block in self.blocks]
        return torch.cat(keys, dim=0), torch.cat(values, dim=0)
