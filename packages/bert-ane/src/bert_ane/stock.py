"""The stock encoder: transformers' own ``BertModel`` / ``RobertaModel`` / ``DistilBertModel``.

Why a thin wrapper: the stock build is the reference every parity check compares against, so
it is the model transformers itself loads from the checkpoint directory (eager attention,
float32), unchanged. The wrapper only gives it the ANE build's inputs (the looked-up word
embeddings as transformers' ``inputs_embeds`` ``(B, S, C)``, or ``input_ids`` with
``token_input="ids"``, and a float 1/0 ``attention_mask``) and the few things ``torch.jit.trace`` + coremltools need with
transformers 5: the mask is passed as the 4-D additive mask that transformers' own masking
would build (it passes 4-D masks through; its mask builder uses ops coremltools cannot
convert), and position and token-type ids are explicit (transformers slices buffers for
them, which does not convert either). The numbers are those of the unmodified model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from ane_core.errors import WeightsError, brief
from ane_core.layers import MASK_VALUE
from torch import Tensor, nn

from bert_ane.config import EncoderShape


def load_stock_model(directory: Path, family: str) -> nn.Module:
    """``{Bert,Roberta,DistilBert}Model.from_pretrained(directory)``, float32, eager attention."""
    import transformers

    classes = {
        "bert": transformers.BertModel,
        "roberta": transformers.RobertaModel,
        "distilbert": transformers.DistilBertModel,
    }
    kwargs = {"add_pooling_layer": False} if family != "distilbert" else {}
    # Its load report lists the unused pooler/head tensors of task checkpoints (not news
    # here), and its progress bar would interleave with ane's own progress lines.
    verbosity = transformers.logging.get_verbosity()
    progress = transformers.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        model = classes[family].from_pretrained(
            str(directory),
            attn_implementation="eager",
            dtype=torch.float32,
            local_files_only=True,
            **kwargs,
        )
    except (OSError, ValueError) as error:
        raise WeightsError(f"transformers cannot load {directory}: {brief(error)}") from None
    finally:
        transformers.logging.set_verbosity(verbosity)
        if progress:
            transformers.logging.enable_progress_bar()
    return model.eval()


class StockEncoder(nn.Module):
    """``(inputs_embeds (B, S, C) or input_ids, float attention_mask)`` to transformers'
    ``last_hidden_state`` ``(B, S, C)``."""

    def __init__(
        self, model: nn.Module, shape: EncoderShape, seq_len: int, token_input: str = "embeddings"
    ) -> None:
        super().__init__()
        self.model = model
        self.family = shape.family
        self.token_input = token_input
        self.padding_idx = shape.padding_position
        self.register_buffer("position_ids", torch.arange(seq_len)[None, :], persistent=False)
        self.register_buffer(
            "token_type_ids", torch.zeros(1, seq_len, dtype=torch.long), persistent=False
        )

    def position_ids_for(self, tokens: Tensor, attention_mask: Tensor) -> Tensor:
        """transformers' positions: ``0..S-1``; RoBERTa numbers non-padding tokens from
        ``pad+1`` and gives padding tokens ``pad`` (its ``create_position_ids_from_input_ids``).

        Without ids (``inputs_embeds``) transformers would number every token, padding
        included, so the non-padding tokens come from the mask instead: the same positions for
        right-padded tokenizer output, where the mask is 0 exactly at the pad ids.
        """
        if self.padding_idx is None:
            return self.position_ids
        if self.token_input == "ids":
            not_padding = tokens.ne(self.padding_idx).int()
        else:
            not_padding = attention_mask.long()
        return torch.cumsum(not_padding, dim=1) * not_padding + self.padding_idx

    def forward(self, tokens: Tensor, attention_mask: Tensor) -> Tensor:
        additive = ((1.0 - attention_mask) * MASK_VALUE)[:, None, None, :]  # (B, 1, 1, S)
        token_key = "input_ids" if self.token_input == "ids" else "inputs_embeds"
        kwargs = {
            token_key: tokens,
            "attention_mask": additive,
            "position_ids": self.position_ids_for(tokens, attention_mask),
        }
        if self.family != "distilbert":
            kwargs["token_type_ids"] = self.token_type_ids.expand_as(attention_mask)
        return self.model(**kwargs).last_hidden_state
