"""``ane inspect`` on the real model: Whisper tiny.en exported from its published weights.

Here, not in ane-core's suite, because ane-core's runs without any architecture plugin.
"""

from __future__ import annotations

import math

import pytest
from ane_core import plugins
from ane_core.convert import to_coreml, trace
from ane_core.export import export_component
from ane_core.inspect import inspect_package
from ane_core.targets import Precision, parse_target
from whisper_ane.model.decoder import TextDecoderANE


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
    placement = report.placement.counts()
    assert placement["cpu-gpu"] == placement["unknown"] == report.placement.switches == 0
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
    # The token lookup (a gather per vocabulary chunk) is what the rules predict off the ANE:
    # each chunk's gather and integer ops are a CPU island, two switches each.
    placement = report.placement
    off = {op.rule for op in placement.ops if op.device != "ane"}
    assert off == {"gather", "integer-compute", "walled-ops"}
    gathers = [op for op in placement.ops if op.op_type == "gather"]
    assert gathers and all(op.rule == "gather" for op in gathers)
    assert placement.switches == 2 * len(gathers)


def test_whisper_decoders_report_their_traffic_per_token(whisper_tiny, tmp_path):
    """The native decoder takes both caches and the cross K/V every token; the stateful one
    keeps the caches inside (counted as state) and takes the cross K/V only."""
    arch, weights = whisper_tiny
    d = weights.dims
    cache = d.n_text_layer * d.n_text_state * d.n_text_ctx * 2  # FP16, one of key/value
    cross = d.n_text_layer * d.n_text_state * d.n_audio_ctx * 2
    masks, token = 2 * d.n_text_ctx * 2, 4
    native = inspect_package(_whisper_export(whisper_tiny, tmp_path, "decoder", "ane")).traffic
    assert native.call_unit == "token"
    assert native.input_bytes == token + 2 * cache + masks + 2 * cross
    heads = len(weights.alignment_heads)
    updates = 2 * d.n_text_layer * d.n_text_state * 2
    assert native.output_bytes == d.n_vocab * 2 + updates + heads * d.n_audio_ctx * 2
    stateful = export_component(
        arch,
        size="tiny.en",
        component="decoder",
        variant="ane",
        weights=weights,
        precision=Precision.FP16,
        target=parse_target("macOS15", precision=Precision.FP16, stateful=True),
        output_dir=tmp_path,
        stateful=True,
    )
    kept = inspect_package(stateful.path).traffic
    assert kept.input_bytes == token + masks + 2 * cross and kept.state_bytes == 2 * cache
    assert kept.output_bytes == d.n_vocab * 2 + heads * d.n_audio_ctx * 2
    assert kept.summary().startswith("per token:")


class _OldDecoder(TextDecoderANE):
    """The decoder as it was built before this rule: the token lookup reads the embedding
    as a (n_vocab, C) table of its own, the logits its (n_i, C, 1, 1) chunks."""

    def embed(self, token, kv_cache_update_mask, tables=None):
        positional = kv_cache_update_mask @ self.positional_embedding
        x = (self.token_embedding(token) + positional)[:, :, None, None]
        update = kv_cache_update_mask[:, None, None, :]
        return x, update, 1.0 - update


def test_duplicate_weights_finds_the_old_decoder_s_second_table_and_none_today(
    whisper_tiny, tmp_path
):
    arch, weights = whisper_tiny
    for component in ("encoder", "cross_kv", "decoder"):
        report = inspect_package(_whisper_export(whisper_tiny, tmp_path, component, "ane"))
        assert report.count("duplicate-weights") == 0, component
    model = arch.build("decoder", "ane", weights, alignment_heads=())
    d = weights.dims
    old = _OldDecoder(d.n_vocab, d.n_text_ctx, d.n_text_state, d.n_text_head, d.n_text_layer)
    for block in old.blocks:  # as the export builds it: cross K/V come from cross_kv
        del block.cross_attn.key, block.cross_attn.value
    old.load_state_dict(model.module.state_dict())
    model.module = old.eval()
    path = tmp_path / "old-decoder.mlpackage"
    mlmodel = to_coreml(trace(model), model, Precision.FP16, parse_target("macOS13")[1])
    mlmodel.save(str(path))
    found = [f for f in inspect_package(path).findings if f.rule == "duplicate-weights"]
    table = d.n_vocab * d.n_text_state * 2
    assert len(found) == 4  # each logits chunk repeats a quarter of the lookup table
    assert sum(f.data["bytes"] for f in found) == table  # 38 MiB for tiny.en
