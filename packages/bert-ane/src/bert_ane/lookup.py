"""The word-embedding lookup, done by the caller instead of inside the ANE program.

Why: looking token ids up in the word-embedding table is a ``gather`` by run-time indices,
which the Neural Engine does not run: Core ML would run that op on the CPU (or GPU) and hand
the result over before the first ANE op, on every call. The lookup is a copy of ``S`` rows of
the table, which an app does for free. So the default export (``--token-input embeddings``)
takes the looked-up rows as its first input, ``token_embeddings`` ``(1, C, 1, S)``, and ships
the table inside the package (:data:`TABLE_ITEM`, see
:meth:`ane_core.architecture.Architecture.package_items`); everything after the lookup
(position and token-type bias, RoBERTa's padding positions, the embedding LayerNorm, the
layers) stays in the program. ``--token-input ids`` keeps the lookup inside (one ``gather``).

The functions here are the one place where ids become embeddings, for tracing, ``ane
parity``, ``ane bench`` and apps alike, so every consumer feeds the model the same rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from ane_core.errors import WeightsError
from ane_core.package_items import PackageItem, load_item
from ane_core.targets import Precision

from bert_ane.config import EncoderShape

TOKEN_INPUTS = ("embeddings", "ids")
"""``embeddings``: the model takes looked-up rows (no gather); ``ids``: it takes token ids."""

TABLE_ITEM = "token_embeddings.npy"
"""The word-embedding table's file name inside the package (``Data/ane/token_embeddings.npy``)."""

INDEXING = {
    "ane": "token_embeddings[0, :, 0, s] = table[input_ids[s]]",
    "stock": "token_embeddings[0, s, :] = table[input_ids[s]]",
}
"""How each variant's first input is made from the table (ANE channels-first)."""

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def word_embedding_table(state_dict: dict[str, torch.Tensor]) -> torch.Tensor:
    """The checkpoint's word embeddings ``(vocab, C)``, float32, from base-model names."""
    try:
        return state_dict["embeddings.word_embeddings.weight"]
    except KeyError:
        raise WeightsError(
            "the checkpoint has no tensor 'embeddings.word_embeddings.weight'.",
            "Use a complete checkpoint of a BertModel, RobertaModel or DistilBertModel.",
        ) from None


def embed_tokens(table: Array, input_ids: Array, *, channels_first: bool = True) -> Array:
    """Rows of ``table`` ``(vocab, C)`` for ``input_ids`` ``(N, S)``: the ANE layout
    ``(N, C, 1, S)`` (``channels_first``) or transformers' ``(N, S, C)``. numpy in, numpy
    out; torch in, torch out. The rows are copied exactly, in the table's dtype."""
    if isinstance(table, torch.Tensor):
        rows = table[torch.as_tensor(input_ids).long()]  # (N, S, C)
        return rows.transpose(1, 2)[:, :, None, :].contiguous() if channels_first else rows
    rows = np.asarray(table)[np.asarray(input_ids, dtype=np.int64)]
    return np.ascontiguousarray(rows.transpose(0, 2, 1)[:, :, None, :]) if channels_first else rows


def token_embeddings(package: str | Path) -> np.ndarray:
    """The word-embedding table ``(vocab, C)`` shipped inside an exported package, in the
    export's precision (float16 for FP16 packages), for :func:`embed_tokens`."""
    return load_item(Path(package), TABLE_ITEM)


def table_item(
    state_dict: dict[str, torch.Tensor], precision: Precision, variant: str
) -> PackageItem:
    """The table as a package item, in the export's float dtype (so the app's rows need no
    conversion before the call), described with ``variant``'s indexing."""
    table = word_embedding_table(state_dict).detach().numpy().astype(precision.numpy_dtype)
    return PackageItem(
        TABLE_ITEM,
        table,
        f"word embeddings (vocab, channels) {table.dtype}; model input {INDEXING[variant]}",
    )


def model_inputs(
    shape: EncoderShape,
    state_dict: dict[str, torch.Tensor],
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    variant: str,
    token_input: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """What a build takes for these ids: ``(input_ids, mask)`` with ``ids``, else
    ``(token_embeddings, mask)`` in the variant's layout (ANE channels-first)."""
    if token_input == "ids":
        return input_ids, attention_mask
    table = word_embedding_table(state_dict)
    if table.shape != (shape.vocab_size, shape.hidden_size):
        raise ValueError(f"word embedding table {tuple(table.shape)} does not match {shape}")
    return embed_tokens(table, input_ids, channels_first=variant == "ane"), attention_mask
