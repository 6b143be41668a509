"""``--embedding host``: the caller looks the token's embedding row up, not the decoder.

Why: the decoder's token lookup is a gather by a run-time id, and storing the tied embedding
once makes it one gather per vocabulary chunk plus about 15 scalar integer ops that pick the
chunk (:func:`whisper_ane.model.decoder.lookup_token`). The Neural Engine runs neither, so
Core ML would run them on the CPU and switch back at every token. The lookup is a copy of one
row, which the app does for free. With ``--embedding host`` the decoder takes that row,
``token_embedding``, instead of ``token`` (ANE ``(1, C, 1, 1)``, stock ``(1, 1, C)``), and
the program has no gather, no integer op and no cast. The logits still read the tied table
inside the program (its one copy there); the table the app indexes ships inside the package
once as :data:`TABLE_ITEM` (``Data/ane/token_embedding.npy``, in the export's precision,
listed in ``Manifest.json``, and its sha256 recorded in the metadata like every shipped
file, see :mod:`ane_core.package_items`), the same mechanism bert-ane's ``--token-input
embeddings`` uses.

:func:`embedding_row` is the lookup; :class:`~whisper_ane.runtime.session.DecoderSession`
calls it for every runner (PyTorch modules, packages), so every consumer feeds the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ane_core.build_options import BuildOption
from ane_core.errors import WeightsError
from ane_core.package_items import PackageItem
from ane_core.targets import Precision

from whisper_ane.weights.source import LoadedWeights

EMBEDDING_OPTION = BuildOption(
    name="embedding",
    default="model",
    choices=("model", "host"),
    help="Decoder token lookup: inside the model from the token id (model, default: a gather "
    "and integer ops off the ANE), or by the app, which passes the token's embedding row "
    "token_embedding and finds the table shipped in the package as "
    "Data/ane/token_embedding.npy (host).",
)

EMBEDDING_INPUT = "token_embedding"
"""The decoder input that replaces ``token`` with ``--embedding host``."""

TABLE_ITEM = "token_embedding.npy"
"""The table's file name inside the decoder package (``Data/ane/token_embedding.npy``)."""

TABLE_TENSOR = "decoder.token_embedding.weight"
"""The checkpoint tensor (openai-whisper's name) the table is."""

ROW_INDEXING = {
    "ane": "token_embedding[0, :, 0, 0] = table[token]",
    "stock": "token_embedding[0, 0, :] = table[token]",
}
"""How each variant's ``token_embedding`` input is made from the table."""


def embeds_on_host(options: Mapping[str, Any]) -> bool:
    """Whether the build ``options`` ask for the lookup outside the decoder."""
    return options.get(EMBEDDING_OPTION.name, EMBEDDING_OPTION.default) == "host"


def row_shape(variant: str, n_state: int) -> tuple[int, ...]:
    """The ``token_embedding`` input's shape in ``variant``'s layout."""
    return (1, n_state, 1, 1) if variant == "ane" else (1, 1, n_state)


def embedding_table(weights: LoadedWeights, dtype: np.dtype | type) -> np.ndarray:
    """The tied token embedding ``(n_vocab, C)`` in ``dtype``."""
    try:
        table = weights.state_dict[TABLE_TENSOR]
    except KeyError:
        raise WeightsError(
            f"the checkpoint has no tensor {TABLE_TENSOR!r}.",
            "Use a complete Whisper checkpoint.",
        ) from None
    return table.detach().float().numpy().astype(dtype)


def table_item(weights: LoadedWeights, precision: Precision, variant: str) -> PackageItem:
    """The table as a package item, in the export's float dtype (the row the app copies
    out is then the model input as it is, with no conversion)."""
    table = embedding_table(weights, precision.numpy_dtype)
    return PackageItem(
        TABLE_ITEM,
        table,
        f"token embedding (n_vocab, channels) {table.dtype}; decoder input {ROW_INDEXING[variant]}",
    )


def embedding_row(table: np.ndarray, token: int, shape: Sequence[int]) -> np.ndarray:
    """Row ``token`` of ``table`` ``(n_vocab, C)`` as a ``shape`` input, copied exactly."""
    if not 0 <= token < table.shape[0]:
        raise ValueError(f"token {token} is outside the {table.shape[0]}-token vocabulary")
    return table[token].reshape(shape)
