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
default; ``split_logits=False`` gives one ``logits`` tensor with the same values. The token
lookup reads the same chunks, so the table is stored once (see
:meth:`TextDecoderANE.vocabulary_tables`). With ``host_embedding`` the caller does the lookup
and passes the token's embedding row ``(1, C, 1, 1)`` instead of its id: the lookup is the
only gather and integer arithmetic in the step, and the ANE runs neither.

With ``alignment_heads`` (``(layer, head)`` pairs), the decoder also returns those heads'
post-softmax cross-attention weights for this position, ``alignment_weights``
``(1, H_a, 1, n_audio_ctx)``: what whisper's word timestamps (``whisper.timing``) read.

Parameter names equal openai-whisper's ``TextDecoder`` ones, so a stock state dict loads
unchanged. ``cross_attn.key`` / ``cross_attn.value`` load into the decoder too (strict
loading) but only :class:`TextCrossAttentionKV` uses them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from ane_core.layers import (
    LayerNormANE,
    LinearConv2d,
    MultiHeadAttentionANE,
    chunk_sizes,
    single_query_attention,
    static_size,
)
from torch import Tensor, nn

from whisper_ane.model.encoder import ResidualAttentionBlockANE

AlignmentHeads = tuple[tuple[int, int], ...]
"""``(layer, head)`` pairs of cross-attention heads whose weights time words."""

LayerInputs = tuple[Tensor, Tensor, Tensor, Tensor]
"""One block's key cache, value cache, cross keys and cross values, each ``(1, C, 1, S)``."""


@dataclass
class StepResult:
    """What one decoder block computes for one position."""

    x: Tensor
    """The block's output ``(1, C, 1, 1)``."""
    key: Tensor
    """This position's self-attention key ``(1, C, 1, 1)``."""
    value: Tensor
    """This position's self-attention value ``(1, C, 1, 1)``."""
    keys: Tensor
    """The cache attention read, with this position blended in ``(1, C, 1, S)`` (a stateful
    decoder stores it; the external-cache one leaves that to its caller)."""
    values: Tensor
    cross_weights: Tensor | None = None
    """Post-softmax cross-attention weights ``(1, H, 1, n_audio_ctx)`` when asked for."""


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
        result = self.step(
            x, key_cache, value_cache, update, keep, key_padding_mask, cross_k, cross_v
        )
        return result.x, result.key, result.value

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
        *,
        cross_weights: bool = False,
    ) -> StepResult:
        """:meth:`forward` with everything a caller may need (see :class:`StepResult`);
        ``cross_weights``: also return the cross-attention weights of every head."""
        attn = self.attn
        h = self.attn_ln(x)
        q, k, v = attn.query(h), attn.key(h), attn.value(h)
        keys = key_cache * keep + k * update
        values = value_cache * keep + v * update
        a = single_query_attention(q, keys, values, attn.n_heads, key_padding_mask=key_padding_mask)
        x = x + attn.out(a)
        cross = self.cross_attn
        q = cross.query(self.cross_attn_ln(x))
        a, weights = single_query_attention(q, cross_k, cross_v, cross.n_heads, return_weights=True)
        x = x + cross.out(a)
        x = x + self.mlp(self.mlp_ln(x))
        return StepResult(x, k, v, keys, values, weights if cross_weights else None)


class TextDecoderANE(nn.Module):
    """One decoding step of Whisper's ``TextDecoder`` with an external static KV cache.

    See the module docstring for the inputs and outputs. ``token`` is the token id ``(1,)``,
    or with ``host_embedding`` its row of the token embedding ``(1, C, 1, 1)`` (looked up by
    the caller, see :meth:`embed`). ``forward`` returns a flat tuple
    ``(*logits, key_cache_update, value_cache_update[, alignment_weights])``: the logits
    chunks ``(1, n_i, 1, 1)`` (or one ``(1, n_vocab, 1, 1)`` with ``split_logits=False``),
    and with ``alignment_heads`` the post-softmax cross-attention weights of those heads,
    ``(1, H_a, 1, n_audio_ctx)`` in the order given (see :meth:`alignment_weights`).
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
        alignment_heads: AlignmentHeads = (),
        host_embedding: bool = False,
    ) -> None:
        super().__init__()
        self.n_ctx = n_ctx
        self.split_logits = split_logits
        self.host_embedding = host_embedding
        self.vocab_chunks = chunk_sizes(n_vocab) if split_logits else [n_vocab]
        self.alignment_heads = check_alignment_heads(alignment_heads, n_layer, n_head)
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
        tables = self.vocabulary_tables()
        x, update, keep = self.embed(token, kv_cache_update_mask, tables)
        x, steps = self.run_blocks(
            x, key_cache, value_cache, update, keep, key_padding_mask, cross_k, cross_v
        )
        keys = torch.cat([step.key for step in steps], dim=0)
        values = torch.cat([step.value for step in steps], dim=0)
        return (*self.project(x, tables), keys, values, *self.alignment_outputs(steps))

    def run_blocks(
        self,
        x: Tensor,
        key_cache: Tensor,
        value_cache: Tensor,
        update: Tensor,
        keep: Tensor,
        key_padding_mask: Tensor,
        cross_k: Tensor,
        cross_v: Tensor,
    ) -> tuple[Tensor, list[StepResult]]:
        """Every block for one position; caches and cross K/V hold layer ``i`` in row ``i``
        (read in ``x``'s dtype). Returns the last block's output and each block's result."""

        def rows(i: int) -> LayerInputs:
            caches = key_cache[i : i + 1].to(x.dtype), value_cache[i : i + 1].to(x.dtype)
            return (*caches, cross_k[i : i + 1], cross_v[i : i + 1])

        return self.run_layers(x, rows, update, keep, key_padding_mask)

    def run_layers(
        self,
        x: Tensor,
        layer_inputs: Callable[[int], LayerInputs],
        update: Tensor,
        keep: Tensor,
        key_padding_mask: Tensor,
    ) -> tuple[Tensor, list[StepResult]]:
        """Every block for one position, block ``i`` reading ``layer_inputs(i)``: its key
        cache, value cache, cross keys and cross values, each ``(1, C, 1, S)``.

        Why a callable: each I/O contract keeps the layers' caches its own way (rows of
        ``(n_layer, C, 1, S)`` here, channel ranges of one ``(1, n_layer * C, 1, S)`` in
        WhisperKit's) and may compute the cross K/V in the model; the step is the same.
        """
        steps = []
        for i, block in enumerate(self.blocks):
            key_cache, value_cache, cross_k, cross_v = layer_inputs(i)
            step = block.step(
                x,
                key_cache,
                value_cache,
                update,
                keep,
                key_padding_mask,
                cross_k,
                cross_v,
                cross_weights=self.reads_cross_weights(i),
            )
            x = step.x
            steps.append(step)
        return x, steps

    def vocabulary_tables(self) -> list[Tensor]:
        """The tied embedding as ``(n_i, C, 1, 1)`` chunks (one chunk with unsplit logits).

        Why one set of tensors for both uses: the token lookup gathers a row from them and the
        logits are 1x1 convolutions with them, so the converted program holds the table once
        (coremltools folds each chunk into one ``const`` that both ops read). A lookup into a
        separate ``(n_vocab, C)`` table would store a second copy, +70% of tiny's decoder.
        """
        table = self.token_embedding.weight[:, :, None, None]
        if len(self.vocab_chunks) == 1:  # coremltools misreads a one-size split_with_sizes
            return [table]
        return list(table.split(self.vocab_chunks))

    def embed(
        self, token: Tensor, kv_cache_update_mask: Tensor, tables: list[Tensor] | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Token plus positional embedding ``(1, C, 1, 1)``, and the one-hot ``update`` mask
        ``(1, 1, 1, S)`` with its complement ``keep``, for the blocks.

        With ``host_embedding``, ``token`` already is the row: the program adds the position
        and never indexes the table, so it has no gather, no integer op and no cast (the
        logits still read the table, stored once in the program)."""
        positional = kv_cache_update_mask @ self.positional_embedding  # (1, C), one-hot select
        if self.host_embedding:
            row = token.to(positional.dtype)
        else:
            row = lookup_token(token, self.vocabulary_tables() if tables is None else tables)
        x = row + positional[:, :, None, None]  # (1, C, 1, 1)
        update = kv_cache_update_mask[:, None, None, :]  # (1, 1, 1, S)
        return x, update, 1.0 - update

    def project(self, x: Tensor, tables: list[Tensor] | None = None) -> tuple[Tensor, ...]:
        """Final LayerNorm and the tied-embedding logits, one 1x1 conv per chunk."""
        tables = self.vocabulary_tables() if tables is None else tables
        x = self.ln(x)
        return tuple(F.conv2d(x, table) for table in tables)

    def reads_cross_weights(self, layer: int) -> bool:
        return any(head_layer == layer for head_layer, _ in self.alignment_heads)

    def alignment_outputs(self, steps: list[StepResult]) -> tuple[Tensor, ...]:
        """``(alignment_weights,)``: the alignment heads' cross-attention weights, picked from
        each block's ``(1, H, 1, n_audio_ctx)``; ``()`` without alignment heads."""
        if not self.alignment_heads:
            return ()
        picked = [steps[layer].cross_weights[:, h : h + 1] for layer, h in self.alignment_heads]
        return (torch.cat(picked, dim=1),)  # (1, H_a, 1, n_audio_ctx)


def lookup_token(token: Tensor, tables: list[Tensor]) -> Tensor:
    """Row ``token`` of the vocabulary split into ``tables`` ``(n_i, C, 1, 1)``: ``(1, C, 1, 1)``.

    One table: a gather. Several: each chunk gathers at the token's index inside it (0 when
    the token lies in another chunk), and a ``select`` keeps the row of the one chunk that
    holds the token (the others give zeros), so the sum is exactly the row. The few scalar
    integer ops this adds are the price of storing the table once (see
    :meth:`TextDecoderANE.vocabulary_tables`).
    """
    if len(tables) == 1:
        return tables[0].index_select(0, token)
    row = None
    start = 0
    zero = torch.zeros_like(token)
    for table in tables:
        size = static_size(table, 0)
        inside = (token >= start) & (token < start + size)
        gathered = table.index_select(0, torch.where(inside, token - start, zero))
        part = torch.where(inside.reshape(1, 1, 1, 1), gathered, torch.zeros_like(gathered))
        row = part if row is None else row + part
        start += size
    return row


def check_alignment_heads(heads: AlignmentHeads, n_layer: int, n_head: int) -> AlignmentHeads:
    """``heads`` as a tuple of int pairs, each inside the model, none repeated."""
    heads = tuple((int(layer), int(head)) for layer, head in heads)
    outside = [(i, h) for i, h in heads if not (0 <= i < n_layer and 0 <= h < n_head)]
    if outside:
        raise ValueError(f"alignment heads {outside} are outside {n_layer} layers x {n_head} heads")
    if len(set(heads)) != len(heads):
        raise ValueError(f"alignment heads repeat: {heads}")
    return heads


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
