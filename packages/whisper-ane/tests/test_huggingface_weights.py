"""Hugging Face transformers Whisper directories as a weight source.

The name table is checked on real weights: tiny.en (CTranslate2) is written out in the
transformers layout, loaded back through ``load_weights`` and must give identical tensors
and transcribe real speech. When transformers is installed, it is the independent oracle
that the written layout really is its own: it loads the directory strictly and computes
what stock openai-whisper computes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import whisper
from ane_core.errors import UsageError, WeightsError
from ane_core.file_checks import file_sha256
from ane_core.skips import require_extra
from weight_writers import hf_config, to_hf_state, write_hf_dir, write_sharded_hf_dir

from whisper_ane.weights import LoadedWeights, build_whisper, load_weights
from whisper_ane.weights.huggingface import name_map

JFK = "ask not what your country can do for you"


@pytest.fixture(scope="module")
def hf_tiny_en(tiny_en_weights, tmp_path_factory) -> Path:
    return write_hf_dir(tmp_path_factory.mktemp("hf") / "whisper-tiny.en", tiny_en_weights)


def _assert_same_tensors(loaded: LoadedWeights, original: LoadedWeights) -> None:
    assert loaded.dims == original.dims
    assert set(loaded.state_dict) == set(original.state_dict)
    for name, tensor in original.state_dict.items():
        assert loaded.state_dict[name].dtype == torch.float32, name
        assert torch.equal(loaded.state_dict[name], tensor), name


def test_name_table_covers_every_whisper_parameter_once(tiny_en_weights):
    dims = tiny_en_weights.dims
    mapping = name_map(dims.n_audio_layer, dims.n_text_layer)
    assert set(mapping) == set(tiny_en_weights.state_dict)
    assert len(set(mapping.values())) == len(mapping)


def test_safetensors_round_trip_is_exact(hf_tiny_en, tiny_en_weights):
    loaded = load_weights("tiny.en", str(hf_tiny_en))
    _assert_same_tensors(loaded, tiny_en_weights)
    assert loaded.source == f"huggingface:{hf_tiny_en}"
    assert loaded.checkpoint_path == str(hf_tiny_en / "model.safetensors")
    assert loaded.sha256 == file_sha256(hf_tiny_en / "model.safetensors")


def test_safetensors_tiny_en_transcribes_jfk(hf_tiny_en, jfk_audio):
    model = build_whisper(load_weights("tiny.en", str(hf_tiny_en)))
    result = whisper.transcribe(model, str(jfk_audio), temperature=0, fp16=False)
    assert JFK in result["text"].lower().replace(",", "")


def test_pytorch_bin_round_trip_is_exact(tiny_en_weights, tmp_path):
    directory = write_hf_dir(tmp_path / "bin", tiny_en_weights, fmt="bin")
    loaded = load_weights("tiny.en", str(directory))
    _assert_same_tensors(loaded, tiny_en_weights)
    assert loaded.checkpoint_path == str(directory / "pytorch_model.bin")


def test_pickled_code_in_pytorch_bin_is_refused_and_not_run(tiny_en_weights, tmp_path):
    directory = tmp_path / "evil"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(hf_config(tiny_en_weights.dims)))
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    torch.save({"model.encoder.conv1.weight": Payload()}, directory / "pytorch_model.bin")
    with pytest.raises(WeightsError, match="pickled code"):
        load_weights("tiny.en", str(directory))
    assert not marker.exists()


def test_half_precision_and_whisper_model_prefix(tiny_en_weights, tmp_path):
    """fp16 files (how most models ship) widen to float32; WhisperModel saves have no ``model.``."""
    half = {k: t.half() for k, t in to_hf_state(tiny_en_weights, prefix="").items()}
    directory = write_hf_dir(tmp_path / "half", tiny_en_weights, state=half)
    loaded = load_weights("tiny.en", str(directory))
    for name, tensor in tiny_en_weights.state_dict.items():
        assert torch.equal(loaded.state_dict[name], tensor.half().float()), name


def test_tied_output_head_is_accepted_and_untied_refused(tiny_en_weights, tmp_path):
    state = to_hf_state(tiny_en_weights)
    embedding = state["model.decoder.embed_tokens.weight"]
    tied = write_hf_dir(
        tmp_path / "tied", tiny_en_weights, state={**state, "proj_out.weight": embedding.clone()}
    )
    assert load_weights("tiny.en", str(tied)).dims == tiny_en_weights.dims
    untied = {**state, "proj_out.weight": embedding + 1.0}
    directory = write_hf_dir(tmp_path / "untied", tiny_en_weights, state=untied)
    with pytest.raises(WeightsError, match="proj_out.weight differs"):
        load_weights("tiny.en", str(directory))


def test_missing_and_unexpected_tensors_are_named(tiny_en_weights, tmp_path):
    state = to_hf_state(tiny_en_weights)
    missing = {k: v for k, v in state.items() if k != "model.decoder.layers.1.fc2.bias"}
    directory = write_hf_dir(tmp_path / "missing", tiny_en_weights, state=missing)
    with pytest.raises(WeightsError, match=r"lacks tensor model\.decoder\.layers\.1\.fc2\.bias"):
        load_weights("tiny.en", str(directory))
    extra = {**state, "model.encoder.layers.4.fc1.bias": torch.zeros(3)}
    directory = write_hf_dir(tmp_path / "extra", tiny_en_weights, state=extra)
    with pytest.raises(
        WeightsError, match=r"unexpected tensor model\.encoder\.layers\.4\.fc1\.bias"
    ):
        load_weights("tiny.en", str(directory))


def test_configs_stock_whisper_cannot_compute_are_refused(tiny_en_weights, tmp_path):
    for name, overrides, message in (
        ("scaled", {"scale_embedding": True}, "scale_embedding"),
        ("relu", {"activation_function": "relu"}, "activation 'relu'"),
        ("nodims", {"d_model": None}, "not a usable WhisperConfig"),
    ):
        directory = write_hf_dir(tmp_path / name, tiny_en_weights, **overrides)
        with pytest.raises(WeightsError, match=message):
            load_weights(None, str(directory))


def test_config_without_weights_is_refused(tiny_en_weights, tmp_path):
    directory = tmp_path / "empty"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(hf_config(tiny_en_weights.dims)))
    with pytest.raises(
        WeightsError,
        match="no model.safetensors, model.safetensors.index.json nor pytorch_model.bin",
    ):
        load_weights("tiny.en", str(directory))
    (directory / "model.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(WeightsError, match="is not a valid safetensors file"):
        load_weights("tiny.en", str(directory))


def test_sharded_safetensors_load(tiny_en_weights, tmp_path):
    directory = write_sharded_hf_dir(tmp_path / "sharded", tiny_en_weights)
    _assert_same_tensors(load_weights("tiny.en", str(directory)), tiny_en_weights)


def test_alignment_heads_come_from_generation_config(tiny_en_weights, tmp_path):
    directory = write_hf_dir(tmp_path / "heads", tiny_en_weights)
    (directory / "generation_config.json").write_text(
        json.dumps({"alignment_heads": [[1, 0], [3, 5]]})
    )
    assert load_weights("tiny.en", str(directory)).alignment_heads == ((1, 0), (3, 5))
    (directory / "generation_config.json").write_text(json.dumps({"alignment_heads": [[4, 0]]}))
    with pytest.raises(WeightsError, match="alignment heads outside the model"):
        load_weights("tiny.en", str(directory))


def test_distil_style_checkpoint_takes_its_dims_when_size_is_omitted(tiny_en_weights, tmp_path):
    """distil-whisper keeps the encoder and only 2 decoder layers: no size name describes it."""
    dims = tiny_en_weights.dims
    distil_dims = type(dims)(**{**vars(dims), "n_text_layer": 2})
    state = {
        name: tensor
        for name, tensor in tiny_en_weights.state_dict.items()
        if not name.startswith(("decoder.blocks.2.", "decoder.blocks.3."))
    }
    distil = LoadedWeights(distil_dims, state, "test", None, None)
    directory = write_hf_dir(tmp_path / "distil", distil)
    with pytest.raises(WeightsError, match="2 decoder layers but --size tiny.en was asked") as e:
        load_weights("tiny.en", str(directory))
    assert "Omit --size" in str(e.value)
    loaded = load_weights(None, str(directory))
    assert loaded.dims == distil_dims
    build_whisper(loaded)  # strict: every parameter of a 2-decoder-layer Whisper is there


def test_size_is_still_needed_for_random_and_download():
    for checkpoint in ("random", "random:3", None):
        with pytest.raises(UsageError, match="needs --size"):
            load_weights(None, checkpoint)


def test_transformers_reads_the_layout_and_computes_the_same(hf_tiny_en, tiny_en_weights):
    """Independent oracle: transformers loads the directory strictly and agrees with whisper."""
    transformers = require_extra(
        "transformers", extra="transformers", install="pip install 'whisper-ane[test]'"
    )
    model = transformers.WhisperForConditionalGeneration.from_pretrained(str(hf_tiny_en))
    model.eval()
    ours = set(to_hf_state(tiny_en_weights))
    theirs = set(model.state_dict()) - {"proj_out.weight"}
    assert ours == theirs
    stock = build_whisper(tiny_en_weights)
    mel = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(0))
    tokens = torch.tensor([[50257, 50362, 440, 1230]])
    with torch.no_grad():
        audio = stock.encoder(mel)
        want = stock.decoder(tokens, audio)
        got = model(input_features=mel, decoder_input_ids=tokens)
    torch.testing.assert_close(got.encoder_last_hidden_state, audio, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got.logits, want, rtol=1e-4, atol=1e-3)
