"""Sentence pooling: read from the checkpoint, ANE layout equal to sentence-transformers."""

from __future__ import annotations

import json

import pytest
import torch
from ane_core.errors import WeightsError
from ane_core.layers import to_channels_first

from bert_ane.pooling import (
    POOLING_MODES,
    PoolingConfig,
    SentenceEmbeddingANE,
    read_pooling,
    reference_pooling,
)


def _write(directory, pooling: dict | None, modules: list | None) -> None:
    if pooling is not None:
        (directory / "1_Pooling").mkdir()
        (directory / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    if modules is not None:
        (directory / "modules.json").write_text(json.dumps(modules))


def test_plain_transformers_checkpoint_gets_mean_without_normalisation(tmp_path):
    assert read_pooling(tmp_path) == PoolingConfig(mode="mean", normalize=False)


def test_cls_pooling_and_normalize_module_are_read(tmp_path):
    _write(
        tmp_path,
        {"word_embedding_dimension": 8, "pooling_mode_cls_token": True},
        [
            {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    config = read_pooling(tmp_path)
    assert (config.mode, config.normalize) == ("cls", True)


def test_unknown_pooling_is_refused(tmp_path):
    _write(tmp_path, {"pooling_mode_weightedmean_tokens": True}, None)
    with pytest.raises(WeightsError, match="pooling_mode_weightedmean_tokens"):
        read_pooling(tmp_path)


@pytest.mark.parametrize("mode", POOLING_MODES)
@pytest.mark.parametrize("normalize", [False, True])
def test_ane_pooling_equals_sentence_transformers_formula(mode, normalize):
    config = PoolingConfig(mode=mode, normalize=normalize)
    generator = torch.Generator().manual_seed(3)
    hidden = torch.randn(2, 10, 16, generator=generator) * 3  # (B, S, C)
    mask = torch.ones(2, 10)
    mask[0, 6:] = 0.0
    mask[1, 9:] = 0.0
    want = reference_pooling(hidden, mask, config)
    got = SentenceEmbeddingANE(config)(to_channels_first(hidden), mask)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_fp16_normalisation_does_not_overflow():
    """A plain sum of squares of these float16 values is above 65504 (inf)."""
    pooled = torch.full((1, 384, 1, 4), 300.0, dtype=torch.float16)
    mask = torch.ones(1, 4, dtype=torch.float16)
    out = SentenceEmbeddingANE(PoolingConfig("mean", normalize=True))(pooled, mask)
    assert torch.isfinite(out).all()
    assert out.float().norm().item() == pytest.approx(1.0, abs=1e-3)
    assert (pooled.float()[..., 0, 0] ** 2).sum() > 65504
