"""Hugging Face parameter names to :class:`~bert_ane.encoder.BertEncoderANE` names, in one place.

Why a mapping and not matching names: BERT/RoBERTa and DistilBERT name the same layers
differently (``attention.self.query`` vs ``attention.q_lin``), and the ANE encoder also folds
what is constant for a fixed sequence length: the position embeddings of positions
``0..seq_len-1`` (RoBERTa: ``pad+1..``) plus the token-type-0 embedding become one
``(1, C, 1, seq_len)`` bias, so the exported program adds a constant instead of gathering
positions at run time. Linear weights keep their ``(out, in)`` shape; ``LinearConv2d``
views them as 1x1 kernels while loading.
"""

from __future__ import annotations

import torch
from ane_core.errors import WeightsError

from bert_ane.config import EncoderShape

_LAYER_NAMES = {
    # ANE name: (bert/roberta name, distilbert name), under each layer's prefix
    "attention.query": ("attention.self.query", "attention.q_lin"),
    "attention.key": ("attention.self.key", "attention.k_lin"),
    "attention.value": ("attention.self.value", "attention.v_lin"),
    "attention.out": ("attention.output.dense", "attention.out_lin"),
    "attention_ln": ("attention.output.LayerNorm", "sa_layer_norm"),
    "ffn_in": ("intermediate.dense", "ffn.lin1"),
    "ffn_out": ("output.dense", "ffn.lin2"),
    "output_ln": ("output.LayerNorm", "output_layer_norm"),
}
_LAYER_PREFIX = {
    "bert": "encoder.layer",
    "roberta": "encoder.layer",
    "distilbert": "transformer.layer",
}
_LEGACY_SUFFIXES = {".gamma": ".weight", ".beta": ".bias"}
"""Old TF-converted checkpoints name LayerNorm parameters gamma/beta (transformers renames
them on load too)."""


def _modern_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    renamed = {}
    for key, value in state.items():
        for old, new in _LEGACY_SUFFIXES.items():
            if key.endswith(old):
                key = key[: -len(old)] + new
        renamed[key] = value
    return renamed


def _take(state: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    try:
        return state[key]
    except KeyError:
        raise WeightsError(
            f"the checkpoint has no tensor {key!r}.",
            "Use a complete checkpoint of a BertModel, RobertaModel or DistilBertModel.",
        ) from None


def position_tables(
    state: dict[str, torch.Tensor], shape: EncoderShape, seq_len: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(position_bias, padding_position_delta)`` in the ANE layout ``(1, C, 1, seq_len)``.

    ``position_bias``: position embedding of each position plus token type 0's embedding.
    ``padding_position_delta`` (RoBERTa only): what to add at padding tokens, which RoBERTa
    gives the position ``pad_token_id`` instead of their index.
    """
    table = _take(state, "embeddings.position_embeddings.weight")
    first = shape.position_offset
    positions = table[first : first + seq_len]
    bias = positions.clone()
    if shape.has_token_types:
        bias = bias + _take(state, "embeddings.token_type_embeddings.weight")[0]
    delta = None
    if shape.padding_position is not None:
        delta = table[shape.padding_position][None, :] - positions
        delta = delta.t()[None, :, None, :].contiguous()
    return bias.t()[None, :, None, :].contiguous(), delta


def ane_state_dict(
    state: dict[str, torch.Tensor], shape: EncoderShape, seq_len: int, token_input: str
) -> dict[str, torch.Tensor]:
    """The state dict of ``BertEncoderANE(shape, seq_len, token_input)`` from base-model
    tensors (the word embeddings only when the model looks token ids up itself)."""
    state = _modern_names(state)
    column = 1 if shape.family == "distilbert" else 0
    bias, delta = position_tables(state, shape, seq_len)
    out = {
        "position_bias": bias,
        "embeddings_ln.weight": _take(state, "embeddings.LayerNorm.weight"),
        "embeddings_ln.bias": _take(state, "embeddings.LayerNorm.bias"),
    }
    if token_input == "ids":
        out["word_embeddings.weight"] = _take(state, "embeddings.word_embeddings.weight")
    if delta is not None:
        out["padding_position_delta"] = delta
    prefix = _LAYER_PREFIX[shape.family]
    for index in range(shape.num_layers):
        for ane_name, hf_names in _LAYER_NAMES.items():
            for param in ("weight", "bias"):
                hf_key = f"{prefix}.{index}.{hf_names[column]}.{param}"
                out[f"layers.{index}.{ane_name}.{param}"] = _take(state, hf_key)
    return out
