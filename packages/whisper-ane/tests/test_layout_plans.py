"""Whisper's layout plans without exporting: names, folders, files, options, refusals.

The exports themselves are in ``test_whispercpp_layout.py``, ``test_whisperkit_layout.py``
and, for every size, ``test_layout_all_sizes.py`` (slow).
"""

from __future__ import annotations

import json

import pytest
import torch
from ane_core.errors import UsageError
from ane_core.layout_export import layout_precisions
from ane_core.targets import Precision

from whisper_ane.architecture import WhisperArchitecture
from whisper_ane.export.layouts import layout_plan, model_name
from whisper_ane.export.layouts.whisperkit import build_text_decoder
from whisper_ane.model.decoder import TextCrossAttentionKV, TextDecoderANE
from whisper_ane.model.decoder_whisperkit import TextDecoderWhisperKit
from whisper_ane.runtime.layout_transcription import check_layout_options
from whisper_ane.weights.source import load_weights


@pytest.fixture(scope="module")
def tiny_random():
    return load_weights("tiny", "random")


def test_model_name_is_the_name_then_the_size_then_the_checkpoint(tmp_path):
    (tmp_path / "my-finetune").mkdir()
    assert model_name("base.en", None, None) == "base.en"
    assert model_name("base.en", "mine", None) == "mine"
    assert model_name(None, None, str(tmp_path / "my-finetune")) == "my-finetune"
    assert model_name(None, None, str(tmp_path / "distil.pt")) == "distil"
    with pytest.raises(UsageError, match="not a plain file name"):
        model_name("base", "a/b", None)


def test_paths_follow_each_apps_naming():
    cpp = layout_plan("whispercpp", size="large-v3-turbo", name=None, checkpoint=None)
    assert cpp.outputs == ["ggml-large-v3-turbo-encoder.mlpackage"] and cpp.root is None
    kit = layout_plan("whisperkit", size="base", name=None, checkpoint=None)
    assert kit.outputs == ["openai_whisper-base"]
    assert [p.path for p in kit.packages] == [
        "MelSpectrogram.mlpackage",
        "AudioEncoder.mlpackage",
        "TextDecoder.mlpackage",
    ]
    named = layout_plan("whisperkit", size="base", name="my-kit", checkpoint=None)
    assert named.outputs == ["my-kit"]
    with pytest.raises(UsageError, match="no --layout 'coreml'"):
        layout_plan("coreml", size="base", name=None, checkpoint=None)


def test_whisperkit_is_fp16_only_and_whispercpp_takes_both():
    arch = WhisperArchitecture()
    layouts = {layout.name: layout for layout in arch.layouts()}
    assert list(layouts) == ["native", "whispercpp", "whisperkit"]
    with pytest.raises(UsageError, match="whisperkit does not take --precision fp32"):
        layout_precisions(layouts["whisperkit"], ["fp32"])
    assert layout_precisions(layouts["whispercpp"], []) == [Precision.FP16]
    assert layout_precisions(layouts["whispercpp"], ["fp32"]) == [Precision.FP32]


def test_random_weights_have_configs_but_no_tokenizer_and_say_so(tiny_random):
    plan = layout_plan("whisperkit", size="tiny", name=None, checkpoint="random")
    files = plan.files(tiny_random)
    assert sorted(files) == ["config.json", "generation_config.json"]
    generation = json.loads(files["generation_config.json"])
    assert generation["alignment_heads"] == [list(h) for h in tiny_random.alignment_heads]
    assert generation["lang_to_id"]["<|es|>"] == 50262 and generation["is_multilingual"]
    assert any("no tokenizer.json" in note for note in plan.notes(tiny_random))


def test_no_alignment_heads_means_no_alignment_output(tiny_random):
    plan = layout_plan("whisperkit", size="tiny", name=None, checkpoint=None, alignment_heads=())
    decoder = plan.packages[2].build(tiny_random)
    assert [spec.name for spec in decoder.outputs] == [
        "logits",
        "key_cache_updates",
        "value_cache_updates",
    ]
    assert json.loads(plan.files(tiny_random)["generation_config.json"])["alignment_heads"] == []
    assert any("word timestamps off" in note for note in plan.notes(tiny_random))


def test_whisperkit_step_is_the_native_step_in_another_layout(tiny_random):
    """Same logits and cache updates as the native ANE decoder with cross K/V from its own
    cross_kv model: only the I/O differs (layers on axis 1, cross K/V computed inside)."""
    whisperkit = build_text_decoder(tiny_random, "auto")
    inputs = whisperkit.example_inputs
    d = tiny_random.dims
    L, C = d.n_text_layer, d.n_text_state
    state = {
        k[len("decoder.") :]: v
        for k, v in tiny_random.state_dict.items()
        if k.startswith("decoder.")
    }
    native = TextDecoderANE(d.n_vocab, d.n_text_ctx, C, d.n_text_head, L, split_logits=False)
    native.load_state_dict(state)
    cross = TextCrossAttentionKV(C, L)
    cross.load_state_dict(
        {k: v for k, v in state.items() if ".cross_attn.key." in k or ".cross_attn.value." in k}
    )
    token, _, keys, values, update, features, padding = inputs
    with torch.no_grad():
        cross_k, cross_v = cross(features)
        as_rows = lambda cache: cache.reshape(L, C, 1, -1)  # noqa: E731
        logits, key_update, value_update = native(
            token, as_rows(keys), as_rows(values), update, padding, cross_k, cross_v
        )
        ours = whisperkit.module(*inputs)
    assert isinstance(whisperkit.module, TextDecoderWhisperKit)
    assert torch.allclose(ours[0], logits.reshape(1, 1, -1), atol=1e-4)
    assert torch.allclose(ours[1], key_update.reshape(1, L * C, 1, 1), atol=1e-5)
    assert torch.allclose(ours[2], value_update.reshape(1, L * C, 1, 1), atol=1e-5)
    assert ours[3].shape == (1, d.n_audio_ctx)
    assert torch.allclose(ours[3].sum(), torch.tensor(1.0), atol=1e-4)  # a mean of softmaxes


@pytest.mark.parametrize(
    ("layout", "backend", "precision", "message"),
    [
        ("whispercpp", "mil", Precision.FP16, "encoder only"),
        ("whisperkit", "torch-ane", Precision.FP16, "not --backend torch-ane"),
        ("whisperkit", "mil", Precision.FP32, "FP16 only"),
    ],
)
def test_transcribing_a_layout_refuses_what_it_cannot_run(layout, backend, precision, message):
    with pytest.raises(UsageError, match=message):
        check_layout_options(layout, backend, precision)
