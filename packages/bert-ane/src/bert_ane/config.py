"""One description of a BERT-family encoder's shape, whatever the checkpoint's family.

Why: BERT, RoBERTa and DistilBERT are the same post-norm transformer encoder, but their
Hugging Face configs spell the sizes differently (``hidden_size`` vs ``dim``, ``hidden_act``
vs ``activation``) and differ in small details (RoBERTa's positions start after the padding
index, DistilBERT has no token types and a fixed LayerNorm epsilon). Reading them into one
:class:`EncoderShape` keeps every such difference in this module; the ANE encoder and the
weight mapping only see the shape.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ane_core.errors import UsageError, WeightsError

FAMILIES = ("bert", "distilbert", "roberta")
"""``model_type`` values of the checkpoints this plugin converts."""

DISTILBERT_LAYER_NORM_EPS = 1e-12
"""DistilBERT hard-codes its LayerNorm epsilon (transformers' ``nn.LayerNorm(dim, eps=1e-12)``)."""

ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")
"""Feed-forward activations the ANE encoder implements (exact GELU, tanh GELU, ReLU)."""


@dataclass(frozen=True)
class EncoderShape:
    """Hyperparameters of a BERT-family encoder, as the ANE build needs them."""

    family: str
    vocab_size: int
    hidden_size: int
    num_heads: int
    num_layers: int
    intermediate_size: int
    max_positions: int
    layer_norm_eps: float
    activation: str
    position_offset: int
    """Index of the first position embedding used (RoBERTa: ``pad_token_id + 1``, else 0)."""
    padding_position: int | None
    """RoBERTa gives padding tokens the position ``pad_token_id``; ``None`` elsewhere."""
    has_token_types: bool

    @property
    def usable_positions(self) -> int:
        """The longest sequence the position table covers."""
        return self.max_positions - self.position_offset

    def as_metadata(self) -> dict[str, str]:
        """String key/values for the exported model's metadata."""
        return {key: str(value) for key, value in asdict(self).items()}


def _get(config: Any, *names: str) -> Any:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    raise WeightsError(
        f"the checkpoint's config.json has none of {', '.join(names)}.",
        "Use a complete Hugging Face config.json.",
    )


def encoder_shape(config: Any) -> EncoderShape:
    """Read an :class:`EncoderShape` from a transformers config (``AutoConfig`` result)."""
    family = getattr(config, "model_type", None)
    if family not in FAMILIES:
        raise UsageError(
            f"the checkpoint's model_type is {family!r}, which bert-ane does not convert.",
            f"Use a checkpoint of model_type {', '.join(FAMILIES)}.",
        )
    if family == "distilbert":
        activation = _get(config, "activation")
        eps = DISTILBERT_LAYER_NORM_EPS
        intermediate = _get(config, "hidden_dim")
        hidden, heads, layers = (
            _get(config, "dim"),
            _get(config, "n_heads"),
            _get(config, "n_layers"),
        )
    else:
        activation = _get(config, "hidden_act")
        eps = float(_get(config, "layer_norm_eps"))
        intermediate = _get(config, "intermediate_size")
        hidden = _get(config, "hidden_size")
        heads = _get(config, "num_attention_heads")
        layers = _get(config, "num_hidden_layers")
        position_type = getattr(config, "position_embedding_type", "absolute") or "absolute"
        if position_type != "absolute":
            raise UsageError(
                f"the checkpoint uses position_embedding_type {position_type!r}.",
                "bert-ane converts absolute position embeddings only.",
            )
    if activation not in ACTIVATIONS:
        raise UsageError(
            f"the checkpoint's activation {activation!r} is not implemented.",
            f"bert-ane implements {', '.join(ACTIVATIONS)}.",
        )
    if hidden % heads:
        raise WeightsError(f"hidden size {hidden} is not divisible by {heads} heads.")
    pad = getattr(config, "pad_token_id", None)
    roberta = family == "roberta"
    if roberta and pad is None:
        raise WeightsError("a roberta config.json without pad_token_id.", "Add pad_token_id.")
    return EncoderShape(
        family=family,
        vocab_size=int(_get(config, "vocab_size")),
        hidden_size=int(hidden),
        num_heads=int(heads),
        num_layers=int(layers),
        intermediate_size=int(intermediate),
        max_positions=int(_get(config, "max_position_embeddings")),
        layer_norm_eps=eps,
        activation=str(activation),
        position_offset=int(pad) + 1 if roberta else 0,
        padding_position=int(pad) if roberta else None,
        has_token_types=family != "distilbert",
    )
