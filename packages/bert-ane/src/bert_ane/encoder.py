"""BERT-family encoders (BERT, RoBERTa, DistilBERT) rewritten for the Apple Neural Engine.

What changes against transformers' ``BertModel`` and why (Apple, "Deploying Transformers on
the Apple Neural Engine", whose DistilBERT port no longer imports with transformers 5):

- The word-embedding lookup is the caller's by default: the model takes the looked-up rows
  ``(B, C, 1, S)`` (:mod:`bert_ane.lookup`), because a lookup by token id is a
  ``gather`` that the ANE does not run. ``token_input="ids"`` keeps the lookup inside.
- After the word-embedding lookup, tensors stay channels-first ``(B, C, 1, S)`` end to end:
  the sequence sits on the last axis (padded to 64 bytes by the ANE) and no transpose is
  needed between layers.
- Linear layers are 1x1 convolutions, attention is split per head into einsums with the
  softmax over the key axis, LayerNorm normalises the channel axis (:mod:`ane_core.layers`).
- The sequence length is fixed when the model is built, so position and token-type
  embeddings fold into one constant bias (see :mod:`bert_ane.state`) instead of a
  position-id gather.
- The attention mask is a float input (1 = token, 0 = padding) and becomes the additive
  ``0 / -1e4`` key padding mask by float arithmetic. An int mask would need a ``cast`` to
  float inside the program, and casts run off the ANE; ``-1e4`` rather than transformers'
  ``finfo.min`` keeps float16 finite.
- Token type ids are not an input: sentence encoders use segment 0 only, which is folded
  into the bias.

The layer order is BERT's post-norm: ``x = LN(x + attn(x)); x = LN(x + ffn(x))``.
"""

from __future__ import annotations

import torch
from ane_core.layers import (
    MASK_VALUE,
    LayerNormANE,
    LinearConv2d,
    MultiHeadAttentionANE,
    to_channels_first,
)
from torch import Tensor, nn

from bert_ane.config import EncoderShape


def activation_module(name: str) -> nn.Module:
    """transformers' ``ACT2FN`` entries that BERT-family checkpoints use, as plain modules."""
    if name == "gelu":
        return nn.GELU()
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return nn.GELU(approximate="tanh")
    if name == "relu":
        return nn.ReLU()
    raise ValueError(f"unsupported activation {name!r}")


class BertLayerANE(nn.Module):
    """One post-norm encoder layer on ``(B, C, 1, S)``."""

    def __init__(self, shape: EncoderShape) -> None:
        super().__init__()
        c, eps = shape.hidden_size, shape.layer_norm_eps
        self.attention = MultiHeadAttentionANE(c, shape.num_heads)
        self.attention_ln = LayerNormANE(c, eps=eps)
        self.ffn_in = LinearConv2d(c, shape.intermediate_size)
        self.activation = activation_module(shape.activation)
        self.ffn_out = LinearConv2d(shape.intermediate_size, c)
        self.output_ln = LayerNormANE(c, eps=eps)

    def forward(self, x: Tensor, key_padding_mask: Tensor) -> Tensor:
        x = self.attention_ln(x + self.attention(x, key_padding_mask=key_padding_mask))
        return self.output_ln(x + self.ffn_out(self.activation(self.ffn_in(x))))


class BertEncoderANE(nn.Module):
    """Word embeddings ``(B, C, 1, S)`` (or, with ``token_input="ids"``, token ids
    ``(B, S)``) and a float 1/0 mask ``(B, S)`` to states ``(B, C, 1, S)``."""

    def __init__(self, shape: EncoderShape, seq_len: int, token_input: str = "embeddings") -> None:
        super().__init__()
        c = shape.hidden_size
        self.seq_len = seq_len
        self.word_embeddings = nn.Embedding(shape.vocab_size, c) if token_input == "ids" else None
        self.register_buffer("position_bias", torch.zeros(1, c, 1, seq_len))
        if shape.padding_position is not None:
            self.register_buffer("padding_position_delta", torch.zeros(1, c, 1, seq_len))
        else:
            self.padding_position_delta = None
        self.embeddings_ln = LayerNormANE(c, eps=shape.layer_norm_eps)
        self.layers = nn.ModuleList(BertLayerANE(shape) for _ in range(shape.num_layers))

    def forward(self, tokens: Tensor, attention_mask: Tensor) -> Tensor:
        padding = 1.0 - attention_mask  # (B, S): 1 at padding tokens
        if self.word_embeddings is not None:  # token ids: the lookup is a gather
            tokens = to_channels_first(self.word_embeddings(tokens))
        x = tokens + self.position_bias
        if self.padding_position_delta is not None:
            x = x + padding[:, None, None, :] * self.padding_position_delta
        x = self.embeddings_ln(x)
        key_padding_mask = padding * MASK_VALUE  # (B, S): 0 or -1e4, additive
        for layer in self.layers:
            x = layer(x, key_padding_mask)
        return x


class SentenceEncoder(nn.Module):
    """An encoder followed by pooling: ``(tokens, attention_mask)`` to ``(B, C)``."""

    def __init__(self, encoder: nn.Module, pooling: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling

    def forward(self, tokens: Tensor, attention_mask: Tensor) -> Tensor:
        return self.pooling(self.encoder(tokens, attention_mask), attention_mask)
