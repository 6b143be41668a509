"""Generic Apple Neural Engine building blocks (no model-specific code).

Everything here works on the channels-first ``(B, C, 1, S)`` layout recommended by Apple's
"Deploying Transformers on the Apple Neural Engine": 1x1 convolutions instead of Linear layers,
layer norm over axis 1, attention split per head with einsum (or, for a single query, heads
as channel groups), and output projections chunked
below the ANE's 16384 per-dimension limit.
"""

from __future__ import annotations

from .attention import (
    MASK_VALUE,
    AttentionImpl,
    MultiHeadAttentionANE,
    causal_mask,
    multi_head_attention,
    original_attention,
    single_query_attention,
    split_einsum_attention,
)
from .chunked import ANE_MAX_DIM, ChunkedLinearConv2d, chunk_sizes, chunked_linear_conv2d
from .layernorm import LayerNormANE
from .layout import static_size, to_channels_first, to_sequence_first
from .linear import LinearConv2d, linear_to_conv2d_hook

__all__ = [
    "ANE_MAX_DIM",
    "MASK_VALUE",
    "AttentionImpl",
    "ChunkedLinearConv2d",
    "LayerNormANE",
    "LinearConv2d",
    "MultiHeadAttentionANE",
    "causal_mask",
    "chunk_sizes",
    "chunked_linear_conv2d",
    "linear_to_conv2d_hook",
    "multi_head_attention",
    "original_attention",
    "single_query_attention",
    "split_einsum_attention",
    "static_size",
    "to_channels_first",
    "to_sequence_first",
]
