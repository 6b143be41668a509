"""``--layout whisperkit`` from real weights (tiny.en here, multilingual base in the slow
run), against WhisperKit's contract and stock whisper.

The contract is argmaxinc/WhisperKit's (``Sources/WhisperKit/Core/TextDecoder.swift``,
``AudioEncoder.swift``, ``FeatureExtractor.swift``, ``Utilities/ModelUtilities.swift``): the
names, shapes and dtypes each model declares, which WhisperKit reads its dimensions from.
The folder is then driven as WhisperKit's Swift loop drives it
(:mod:`whisper_ane.runtime.whisperkit_driver`), through the reference executor, and its
greedy tokens and ``alignment_heads_weights`` are compared with stock whisper's.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import whisper
from ane_core.inspect import inspect_package
from ane_core.layout_export import export_layout, plan_layout
from ane_core.metrics import psnr
from ane_core.mil import load_spec, op_counts
from ane_core.skips import require_extra
from ane_core.targets import Precision, parse_target
from whisper.decoding import DecodingOptions

from whisper_ane.architecture import WhisperArchitecture
from whisper_ane.export.alignment_heads import resolve_alignment_heads
from whisper_ane.runtime.whisperkit_driver import WhisperKitFolder
from whisper_ane.speech import speech_path
from whisper_ane.weights.source import build_whisper, load_weights

FLOAT16, FLOAT32, INT32 = 65552, 65568, 131104  # Core ML ArrayDataType values

SIZES = ["tiny.en", pytest.param("base", marks=pytest.mark.slow)]


@pytest.fixture(scope="module", params=SIZES)
def exported(request, tmp_path_factory):
    """``(size, weights, folder)``: the WhisperKit folder of ``size``'s real weights."""
    from conftest import registry_dir

    size = request.param
    checkpoint = str(registry_dir(size))
    weights = load_weights(size, checkpoint)
    arch = WhisperArchitecture()
    directory = tmp_path_factory.mktemp(f"whisperkit-{size}")
    plan = plan_layout(
        arch, "whisperkit", size=size, name=None, checkpoint=checkpoint, output_dir=directory
    )
    result = export_layout(
        arch,
        plan,
        size=size,
        weights=weights,
        precision=Precision.FP16,
        target=parse_target("macOS13"),
        output_dir=directory,
    )
    assert result.outputs == [directory / f"openai_whisper-{size}"]
    return size, weights, result.outputs[0]


def _io(package):
    description = load_spec(package).description

    def describe(features):
        return {
            f.name: (tuple(f.type.multiArrayType.shape), f.type.multiArrayType.dataType)
            for f in features
        }

    return describe(description.input), describe(description.output)


def test_folder_holds_what_whisperkit_loads(exported):
    _, _, folder = exported
    assert sorted(p.name for p in folder.iterdir()) == [
        "AudioEncoder.mlpackage",
        "MelSpectrogram.mlpackage",
        "TextDecoder.mlpackage",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]


def test_models_declare_whisperkits_names_shapes_and_dtypes(exported):
    size, weights, folder = exported
    d = weights.dims
    n_mels, C, L, V = d.n_mels, d.n_text_state, d.n_text_layer, d.n_vocab
    mel = (1, n_mels, 1, 3000)
    assert _io(folder / "MelSpectrogram.mlpackage") == (
        {"audio": ((480000,), FLOAT16)},
        {"melspectrogram_features": (mel, FLOAT16)},
    )
    assert _io(folder / "AudioEncoder.mlpackage") == (
        {"melspectrogram_features": (mel, FLOAT16)},
        {"encoder_output_embeds": ((1, C, 1, 1500), FLOAT16)},
    )
    inputs, outputs = _io(folder / "TextDecoder.mlpackage")
    assert inputs == {
        "input_ids": ((1,), INT32),
        "cache_length": ((1,), INT32),
        "key_cache": ((1, C * L, 1, 448), FLOAT16),
        "value_cache": ((1, C * L, 1, 448), FLOAT16),
        "kv_cache_update_mask": ((1, 448), FLOAT16),
        "encoder_output_embeds": ((1, C, 1, 1500), FLOAT16),
        "decoder_key_padding_mask": ((1, 448), FLOAT16),
    }
    assert outputs == {
        "logits": ((1, 1, V), FLOAT16),  # rank 3: WhisperKit's logitsSize is axis 2
        "key_cache_updates": ((1, C * L, 1, 1), FLOAT16),
        "value_cache_updates": ((1, C * L, 1, 1), FLOAT16),
        "alignment_heads_weights": ((1, 1500), FLOAT16),
    }
    # WhisperKit tells the variant (and tokenizer) from logits axis 2
    assert outputs["logits"][0][2] == {"tiny.en": 51864, "base": 51865}[size]
    for name in ("MelSpectrogram", "AudioEncoder", "TextDecoder"):
        assert op_counts(folder / f"{name}.mlpackage")["cast"] == 0, name


def test_decoder_stores_the_vocabulary_once(exported):
    """Its weights are the stock decoder's (embedding once) in float16, nothing more: the
    token gather and the logits conv read one table."""
    _, weights, folder = exported
    decoder = [t for n, t in weights.state_dict.items() if n.startswith("decoder.")]
    expected = 2 * sum(t.numel() for t in decoder)  # float16 bytes
    stored = inspect_package(folder / "TextDecoder.mlpackage").cost.weight_bytes
    assert abs(stored - expected) / expected < 0.005


class _Recorder:
    """Wraps the decoder program: keeps every call's ``alignment_heads_weights``."""

    def __init__(self, program):
        self.program = program
        self.alignment = []

    def __call__(self, inputs):
        outputs = self.program(inputs)
        self.alignment.append(np.asarray(outputs["alignment_heads_weights"], np.float32)[0])
        return outputs


def _stock_cross_attention(model, mel, tokens, heads):
    """Stock whisper's post-softmax cross-attention weights over ``tokens`` (one row per
    position), averaged over ``heads``, from hooks on its own blocks (as whisper.timing)."""
    weights = {}
    hooks = [
        block.cross_attn.register_forward_hook(
            lambda _, __, outs, index=i: weights.__setitem__(index, outs[-1][0])
        )
        for i, block in enumerate(model.decoder.blocks)
    ]
    try:
        with torch.no_grad(), whisper.model.disable_sdpa():
            model(mel[None], torch.tensor([tokens]))
    finally:
        for hook in hooks:
            hook.remove()
    picked = [weights[layer][head].float().softmax(dim=-1) for layer, head in heads]
    return torch.stack(picked).mean(dim=0)  # (positions, 1500)


@pytest.mark.parametrize("clip", ["jfk.flac", "es_test_clip.wav"])
def test_driven_as_whisperkit_it_decodes_stock_whispers_tokens(exported, clip):
    _, weights, folder_path = exported
    stock = build_whisper(weights)
    window = whisper.pad_or_trim(whisper.load_audio(str(speech_path(clip))))
    mel = whisper.log_mel_spectrogram(torch.from_numpy(window), weights.dims.n_mels)
    language = "en"
    if stock.is_multilingual:
        _, probs = stock.detect_language(mel)
        language = max(probs, key=probs.get)
    options = DecodingOptions(
        without_timestamps=True, temperature=0.0, fp16=False, language=language
    )
    expected = whisper.decode(stock, mel, options)

    folder = WhisperKitFolder(folder_path)
    recorder = _Recorder(folder.programs["TextDecoder"])
    folder.programs["TextDecoder"] = recorder
    result = folder.decode_window(window)
    assert result.tokens == expected.tokens, folder.tokenizer.decode(result.tokens)
    if stock.is_multilingual:
        assert result.language == language

    # Call i attends from position i: the prompt, then each sampled token but the last.
    sequence = result.prompt + result.tokens
    heads = resolve_alignment_heads("auto", weights)
    reference = _stock_cross_attention(stock, mel, sequence, heads)
    calls = recorder.alignment[-len(sequence) :]  # a multilingual model's language step first
    assert len(recorder.alignment) == len(sequence) + int(stock.is_multilingual)
    got = np.stack(calls)
    assert psnr(reference, got) >= 30


def test_hf_files_load_in_transformers(exported):
    transformers = require_extra(
        "transformers", extra="transformers", install="pip install transformers"
    )
    _, weights, folder = exported
    d = weights.dims
    config = transformers.WhisperConfig.from_pretrained(folder)
    assert (config.d_model, config.decoder_layers, config.vocab_size, config.num_mel_bins) == (
        d.n_text_state,
        d.n_text_layer,
        d.n_vocab,
        d.n_mels,
    )
    generation = transformers.GenerationConfig.from_pretrained(folder)
    heads = resolve_alignment_heads("auto", weights)
    assert [tuple(h) for h in generation.alignment_heads] == list(heads)
    tokenizer = whisper.tokenizer.get_tokenizer(d.n_vocab > 51864)
    assert generation.decoder_start_token_id == tokenizer.sot
    assert generation.no_timestamps_token_id == tokenizer.no_timestamps
    assert generation.eos_token_id == tokenizer.eot
    hf = transformers.AutoTokenizer.from_pretrained(folder)
    text = " And so my fellow Americans, ask not"
    assert hf.encode(text, add_special_tokens=False) == tokenizer.encode(text)
    assert hf.convert_tokens_to_ids("<|startoftranscript|>") == tokenizer.sot
    assert json.loads((folder / "tokenizer_config.json").read_text())["tokenizer_class"] == (
        "WhisperTokenizer"
    )
