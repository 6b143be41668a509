"""``ane inspect`` on the real model: Whisper tiny.en exported from its published weights.

Here, not in ane-core's suite, because ane-core's runs without any architecture plugin.
"""

from __future__ import annotations

import math

import pytest
from ane_core import plugins
from ane_core.export import export_component
from ane_core.inspect import inspect_package
from ane_core.targets import Precision, parse_target


@pytest.fixture(scope="module")
def whisper_tiny(tiny_en_dir):
    arch = plugins.get_architecture("whisper")
    return arch, arch.load_weights("tiny.en", str(tiny_en_dir))


def _whisper_export(whisper_tiny, tmp_path, component, variant):
    arch, weights = whisper_tiny
    return export_component(
        arch,
        size="tiny.en",
        component=component,
        variant=variant,
        weights=weights,
        precision=Precision.FP16,
        target=parse_target("macOS13"),
        output_dir=tmp_path,
    ).path


OFF_ANE_LIMITS = ("cast", "float32-compute", "dim-over-16384", "rank-over-4")


def test_whisper_tiny_ane_fp16_encoder_meets_the_ane_limits(whisper_tiny, tmp_path):
    report = inspect_package(_whisper_export(whisper_tiny, tmp_path, "encoder", "ane"))
    for rule in OFF_ANE_LIMITS:
        assert report.count(rule) == 0, [f.detail for f in report.findings if f.rule == rule]
    assert report.findings == [], [f.detail for f in report.findings]
    d = whisper_tiny[1].dims
    frames, ctx, width = 2 * d.n_audio_ctx, d.n_audio_ctx, d.n_audio_state
    per_layer = 4 * ctx * width * width + 2 * ctx * width * 4 * width + 2 * ctx * ctx * width
    macs = frames * width * d.n_mels * 3 + ctx * width * width * 3 + d.n_audio_layer * per_layer
    assert report.cost.matmul_flops == 2 * macs
    params = sum(
        v.numel() for k, v in whisper_tiny[1].state_dict.items() if k.startswith("encoder.")
    )
    assert 2 * params <= report.cost.weight_bytes <= math.ceil(2 * params * 1.001)


def test_whisper_tiny_stock_encoder_batches_attention_over_heads(whisper_tiny, tmp_path):
    report = inspect_package(_whisper_export(whisper_tiny, tmp_path, "encoder", "stock"))
    d = whisper_tiny[1].dims
    assert report.count("not-split-heads") == 2 * d.n_audio_layer
    assert all(f"batched over {d.n_audio_head} heads" in f.detail for f in report.findings
               if f.rule == "not-split-heads")  # fmt: skip


def test_whisper_tiny_ane_fp16_decoder_meets_the_ane_limits(whisper_tiny, tmp_path):
    report = inspect_package(_whisper_export(whisper_tiny, tmp_path, "decoder", "ane"))
    for rule in OFF_ANE_LIMITS:
        assert report.count(rule) == 0, [f.detail for f in report.findings if f.rule == rule]
