"""Sentence embeddings: the sentence-transformers pooling of a checkpoint, in two layouts.

Why it belongs in the model: on a phone the encoder's per-token states are only a means to
the sentence vector; pooling and normalising inside the Core ML program returns ``C`` numbers
instead of ``C x seq_len`` and keeps the arithmetic on the ANE.

The pooling comes from the checkpoint, as sentence-transformers reads it:
``1_Pooling/config.json`` (``pooling_mode_mean_tokens``, ``..._cls_token``,
``..._max_tokens``, ``..._mean_sqrt_len_tokens``) and a ``Normalize`` module listed in
``modules.json``. A plain transformers checkpoint without them gets mean pooling without
normalisation (sentence-transformers' default for such a model).

:class:`SentenceEmbeddingANE` pools an ANE-layout ``(B, C, 1, S)`` state; FP16-safe choices:
the mean is a weighted sum with weights ``mask / count`` (no ``C``-wide sum that could exceed
float16's 65504), and the L2 normalisation first divides by the vector's max-abs (so the sum
of squares lies in ``[1, C]``). :func:`reference_pooling` is sentence-transformers' own
formula on ``(B, S, C)``, the reference the ANE result is compared against.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch.nn.functional as F
from ane_core.errors import WeightsError
from ane_core.layers import MASK_VALUE
from torch import Tensor, nn

POOLING_KEYS = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
}
"""``1_Pooling/config.json`` switches and the pooling each selects."""
POOLING_MODES = tuple(POOLING_KEYS.values())
_FP16_TINY = 2.0**-24


@dataclass(frozen=True)
class PoolingConfig:
    """How a checkpoint turns token states into one sentence vector."""

    mode: str = "mean"
    normalize: bool = False
    source: str = "default (no 1_Pooling/config.json)"

    def describe(self) -> str:
        return f"{self.mode}{' + L2 normalise' if self.normalize else ''}"


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise WeightsError(f"cannot read {path}: {error}.") from None


def read_pooling(directory: Path) -> PoolingConfig:
    """The sentence-transformers pooling stored with the checkpoint (see module docstring)."""
    modules_path = directory / "modules.json"
    modules = _read_json(modules_path) if modules_path.is_file() else []
    if not isinstance(modules, list):
        raise WeightsError(f"{modules_path} is not a list of modules.")
    pooling_dir = "1_Pooling"
    normalize = False
    for module in modules:
        kind = str(module.get("type", "")) if isinstance(module, dict) else ""
        if kind.endswith(".Pooling"):
            pooling_dir = str(module.get("path") or pooling_dir)
        normalize = normalize or kind.endswith(".Normalize")
    config_path = directory / pooling_dir / "config.json"
    if not config_path.is_file():
        return PoolingConfig(normalize=normalize)
    config = _read_json(config_path)
    if not isinstance(config, dict):
        raise WeightsError(f"{config_path} is not a JSON object.")
    selected = [key for key, value in config.items() if key.startswith("pooling_mode_") and value]
    modes = [POOLING_KEYS.get(key, key) for key in selected]
    if len(modes) != 1 or modes[0] not in POOLING_MODES:
        raise WeightsError(
            f"{config_path} selects pooling {modes or 'none'}.",
            f"bert-ane implements exactly one of {', '.join(POOLING_MODES)}.",
        )
    return PoolingConfig(mode=modes[0], normalize=normalize, source=str(config_path))


def _l2_normalize_channels(x: Tensor) -> Tensor:
    """``x / ||x||`` over axis 1, overflow-safe in float16 and free of casts."""
    scale = x.abs().amax(dim=1, keepdim=True).clamp_min(_FP16_TINY)
    z = x / scale  # max |z| is 1, so sum(z**2) is in [1, C] unless x == 0
    return z * (z * z).sum(dim=1, keepdim=True).clamp_min(1.0).rsqrt()


class SentenceEmbeddingANE(nn.Module):
    """Pool ``(B, C, 1, S)`` token states with a float ``(B, S)`` 1/0 mask to ``(B, C)``."""

    def __init__(self, config: PoolingConfig) -> None:
        super().__init__()
        if config.mode not in POOLING_MODES:
            raise ValueError(f"unknown pooling mode {config.mode!r}")
        self.mode = config.mode
        self.normalize = config.normalize

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        if self.mode == "cls":
            pooled = hidden[:, :, 0, 0]
        elif self.mode == "max":
            padding = ((mask - 1.0) * -MASK_VALUE)[:, None, None, :]  # 0 or -1e4
            pooled = (hidden + padding).amax(dim=3)[:, :, 0]
        else:
            count = mask.sum(dim=1, keepdim=True).clamp_min(1.0)
            divisor = count if self.mode == "mean" else count.sqrt()
            weights = (mask / divisor)[:, None, None, :]  # (B, 1, 1, S)
            pooled = (hidden * weights).sum(dim=3)[:, :, 0]
        if self.normalize:
            pooled = _l2_normalize_channels(pooled)
        return pooled

    def extra_repr(self) -> str:
        return f"mode={self.mode}, normalize={self.normalize}"


def reference_pooling(hidden: Tensor, mask: Tensor, config: PoolingConfig) -> Tensor:
    """sentence-transformers' pooling of ``(B, S, C)`` states (its ``Pooling`` and
    ``Normalize`` modules' formulas), for parity checks and the stock build."""
    mask = mask.to(hidden.dtype).unsqueeze(-1)  # (B, S, 1)
    if config.mode == "cls":
        pooled = hidden[:, 0]
    elif config.mode == "max":
        pooled = hidden.masked_fill(mask == 0, -1e9).max(dim=1).values
    else:
        total = (hidden * mask).sum(dim=1)
        count = mask.sum(dim=1).clamp(min=1e-9)
        pooled = total / (count if config.mode == "mean" else count.sqrt())
    return F.normalize(pooled, p=2, dim=1) if config.normalize else pooled


class ReferenceSentenceEmbedding(nn.Module):
    """:func:`reference_pooling` as a module, for the stock build of the embedding."""

    def __init__(self, config: PoolingConfig) -> None:
        super().__init__()
        self.config = config

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        return reference_pooling(hidden, mask, self.config)


def pooling_module(config: PoolingConfig, *, ane: bool) -> nn.Module:
    """The pooling for the ANE layout or the stock (sequence-first) layout."""
    return SentenceEmbeddingANE(config) if ane else ReferenceSentenceEmbedding(config)


__all__ = [
    "POOLING_MODES",
    "PoolingConfig",
    "ReferenceSentenceEmbedding",
    "SentenceEmbeddingANE",
    "pooling_module",
    "read_pooling",
    "reference_pooling",
]
