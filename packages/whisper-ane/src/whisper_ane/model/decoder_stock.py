"""The stock Whisper decoder with the same fixed-shape, one-token interface as the ANE one.

Why: to compare the ANE rewrite against the original architecture on equal terms (same
inputs, same static cache, same one step per token), the stock modules of
``whisper.model.TextDecoder`` (``Linear``, float32 ``LayerNorm``, ``(B, S, C)`` tensors,
attention on ``(B, H, S, d)`` reshapes) are driven here with an external cache instead of
whisper's growing hook cache. It exports to Core ML (fixed shapes) and it is the
``torch-stock`` backend of the decoding loop.

Layouts are sequence-first: caches ``(n_layer, n_ctx, C)``, this step's keys and values
``(n_layer, 1, C)``, cross-attention keys and values ``(n_layer, n_audio_ctx, C)``; the
masks are the same ``(1, n_ctx)`` inputs as the ANE decoder's. Logits come out unsplit,
``(1, 1, n_vocab)`` in float32, as whisper returns them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import whisper.model
from ane_core.layers import static_size
from torch import Tensor, nn

from whisper_ane.model.decoder import AlignmentHeads, check_alignment_heads


def stock_attention(
    q: Tensor, k: Tensor, v: Tensor, n_head: int, mask: Tensor | None, *, with_weights: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """``whisper.model.MultiHeadAttention.qkv_attention`` (its non-SDPA path) with an additive
    ``mask`` that broadcasts to ``(B, H, Sq, Sk)``.

    Whisper's own method slices its mask to a square ``[:n_ctx, :n_ctx]`` (no padding mask
    for a cache) and its SDPA path takes no mask at all, hence this copy of the formula.
    ``with_weights``: also return the post-softmax weights ``(B, H, Sq, Sk)``, as whisper's
    own ``qkv_attention`` does for its word timestamps.
    """
    # Fixed shapes: sizes are read as Python ints, so a traced graph holds constants.
    scale = (static_size(q, 2) // n_head) ** -0.25

    def heads(x: Tensor) -> Tensor:
        return x.view(static_size(x, 0), static_size(x, 1), n_head, -1).permute(0, 2, 1, 3)

    q, k, v = heads(q), heads(k), heads(v)
    qk = (q * scale) @ (k * scale).transpose(-1, -2)
    if mask is not None:
        qk = qk + mask
    w = F.softmax(qk.float(), dim=-1).to(q.dtype)
    out = (w @ v).permute(0, 2, 1, 3).flatten(start_dim=2)
    return (out, w) if with_weights else out


class StockTextDecoderStep(nn.Module):
    """``whisper.model.TextDecoder`` for one token against a static cache.

    Same parameter names as ``TextDecoder`` (stock state dicts load strictly). ``forward``
    returns ``(logits, key_cache_update, value_cache_update)``, and with ``alignment_heads``
    also those heads' cross-attention weights ``(1, H_a, 1, n_audio_ctx)``, as the ANE
    decoder does. With ``host_embedding`` it takes the token's embedding row ``(1, 1, C)``
    (looked up by the caller) instead of the id, as the ANE decoder built that way does.
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
        host_embedding: bool = False,
    ) -> None:
        super().__init__()
        self.n_head = n_head
        self.host_embedding = host_embedding
        self.alignment_heads = check_alignment_heads(alignment_heads, n_layer, n_head)
        self.token_embedding = nn.Embedding(n_vocab, n_state)
        self.positional_embedding = nn.Parameter(torch.empty(n_ctx, n_state))
        self.blocks = nn.ModuleList(
            whisper.model.ResidualAttentionBlock(n_state, n_head, cross_attention=True)
            for _ in range(n_layer)
        )
        self.ln = whisper.model.LayerNorm(n_state)

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
        positional = (kv_cache_update_mask @ self.positional_embedding)[:, None, :]  # (1, 1, C)
        row = token if self.host_embedding else self.token_embedding(token)[:, None, :]
        x = row + positional  # (1, 1, C)
        update = kv_cache_update_mask[:, :, None]  # (1, S, 1)
        keep = 1.0 - update
        mask = key_padding_mask[:, None, None, :]  # (1, 1, 1, S)
        keys, values, cross_weights = [], [], []
        for i, block in enumerate(self.blocks):
            h = block.attn_ln(x)
            k, v = block.attn.key(h), block.attn.value(h)
            all_k = key_cache[i : i + 1] * keep + k * update
            all_v = value_cache[i : i + 1] * keep + v * update
            a = stock_attention(block.attn.query(h), all_k, all_v, self.n_head, mask)
            x = x + block.attn.out(a)
            q = block.cross_attn.query(block.cross_attn_ln(x))
            a, w = stock_attention(
                q, cross_k[i : i + 1], cross_v[i : i + 1], self.n_head, None, with_weights=True
            )
            cross_weights.append(w)  # (1, H, 1, n_audio_ctx)
            x = x + block.cross_attn.out(a)
            x = x + block.mlp(block.mlp_ln(x))
            keys.append(k)
            values.append(v)
        x = self.ln(x)
        logits = (x @ self.token_embedding.weight.to(x.dtype).t()).float()
        outputs = (logits, torch.cat(keys, dim=0), torch.cat(values, dim=0))
        if not self.alignment_heads:
            return outputs
        picked = [cross_weights[layer][:, h : h + 1] for layer, h in self.alignment_heads]
        return (*outputs, torch.cat(picked, dim=1))


class _StockKeyValue(nn.Module):
    def __init__(self, n_state: int) -> None:
        super().__init__()
        self.key = whisper.model.Linear(n_state, n_state, bias=False)
        self.value = whisper.model.Linear(n_state, n_state)


class _StockCrossKVBlock(nn.Module):
    def __init__(self, n_state: int) -> None:
        super().__init__()
        self.cross_attn = _StockKeyValue(n_state)


class StockCrossAttentionKV(nn.Module):
    """Encoder output ``(1, n_audio_ctx, C)`` to cross-attention keys and values
    ``(n_layer, n_audio_ctx, C)``: what whisper's hook cache stores after the first step."""

    def __init__(self, n_state: int, n_layer: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(_StockCrossKVBlock(n_state) for _ in range(n_layer))

    def forward(self, encoder_output: Tensor) -> tuple[Tensor, Tensor]:
        keys = [block.cross_attn.key(encoder_output) for block in self.blocks]
        values = [block.cross_attn.value(encoder_output) for block in self.blocks]
        return torch.cat(keys, dim=0), torch.cat(values, dim=0)
