"""``scaled_dot_product_attention`` (iOS18 ``transformers.py``)."""

from __future__ import annotations

import numpy as np

from ane_core.executor.ops._util import softmax
from ane_core.executor.registry import register


@register("scaled_dot_product_attention")
def scaled_dot_product_attention(query, key, value, attn_mask=None):
    """``softmax(q k^T / sqrt(d) + mask) v``; a boolean mask of False means -inf."""
    query, key = np.asarray(query), np.asarray(key)
    scores = np.matmul(query, np.swapaxes(key, -1, -2)) / np.sqrt(np.float32(query.shape[-1]))
    if attn_mask is not None:
        mask = np.asarray(attn_mask)
        if mask.dtype == np.bool_:
            mask = np.where(mask, np.float32(0), np.float32(-np.inf))
        scores = scores + mask
    return np.matmul(softmax(scores, axis=-1), value)
