"""Word timestamps and whisper's full transcribe options through ``whisper_ane.load_model``.

The reference is openai-whisper itself (``whisper.transcribe`` on the stock model with the
same weights and options). Our models run whisper's own timing code; only the attention
weights come from the decoder's ``alignment_weights`` output, replayed step by step.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import whisper
from ane_core.errors import UsageError

import whisper_ane
from whisper_ane.speech import speech_path
from whisper_ane.weights.source import build_whisper, load_weights


def _words(result: dict) -> list[dict]:
    return [word for segment in result["segments"] for word in segment["words"]]


def _worst_shift(reference: dict, result: dict) -> list[float]:
    """Per word, the larger of the start and end differences (the words must be the same)."""
    want, got = _words(reference), _words(result)
    assert [w["word"] for w in got] == [w["word"] for w in want]
    return [
        max(abs(a["start"] - b["start"]), abs(a["end"] - b["end"]))
        for a, b in zip(want, got, strict=True)
    ]


@pytest.fixture(scope="module")
def stock_tiny(tiny_en_weights):
    return build_whisper(tiny_en_weights)


@pytest.fixture(scope="module")
def ane_tiny(tiny_en_dir):
    return whisper_ane.load_model(tiny_en_dir, backend="torch-ane")


def test_load_model_looks_like_whisper_s(ane_tiny, stock_tiny):
    assert ane_tiny.to("cpu") is ane_tiny
    assert ane_tiny.dims == stock_tiny.dims
    assert ane_tiny.is_multilingual is False and ane_tiny.num_languages == stock_tiny.num_languages
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(whisper.load_audio(speech_path("jfk"))))
    for model in (ane_tiny, stock_tiny):  # English-only: whisper's own refusal, from both
        with pytest.raises(ValueError, match="language tokens"):
            model.detect_language(mel)


def test_fp32_word_timestamps_equal_whisper_s(ane_tiny, stock_tiny):
    audio = str(speech_path("jfk.flac"))
    reference = whisper.transcribe(stock_tiny, audio, word_timestamps=True, fp16=False)
    result = ane_tiny.transcribe(audio, word_timestamps=True)
    assert result["text"] == reference["text"] and result["language"] == "en"
    assert max(_worst_shift(reference, result)) <= 0.02
    for want, got in zip(_words(reference), _words(result), strict=True):
        assert got["probability"] == pytest.approx(want["probability"], abs=1e-4)


@pytest.mark.slow
def test_fp32_word_timestamps_equal_whisper_s_in_spanish(base_dir):
    stock = build_whisper(load_weights("base", str(base_dir)))
    model = whisper_ane.load_model(base_dir, backend="torch-ane")
    audio = str(speech_path("es_test_clip.wav"))
    reference = whisper.transcribe(stock, audio, word_timestamps=True, fp16=False)
    result = model.transcribe(audio, word_timestamps=True)
    assert result["language"] == "es" and result["text"] == reference["text"]
    assert max(_worst_shift(reference, result)) <= 0.02


def test_fp16_packages_time_words_like_whisper(tiny_en_dir, stock_tiny, tmp_path, monkeypatch):
    """The exported FP16 packages in the reference executor: at least 95% of the words
    within 0.1 s of stock whisper's float32 timings."""
    monkeypatch.setenv("ANE_PACKAGES_DIR", str(tmp_path))
    model = whisper_ane.load_model(tiny_en_dir, backend="mil", precision="fp16")
    audio = str(speech_path("jfk.flac"))
    reference = whisper.transcribe(stock_tiny, audio, word_timestamps=True, fp16=False)
    result = model.transcribe(audio, word_timestamps=True, temperature=0.0)
    shifts = np.array(_worst_shift(reference, result))
    assert np.mean(shifts <= 0.1) >= 0.95, shifts


def test_temperature_fallback_samples_best_of_like_whisper(ane_tiny, stock_tiny):
    """A logprob threshold no greedy decoding meets forces whisper's fallback: sampling five
    candidates at 0.2 (best_of), then at 0.4. With the same seed our model draws the same
    samples as stock whisper, so the whole fallback gives the same text (FP32)."""
    audio = str(speech_path("jfk.flac"))
    options = {"temperature": (0.0, 0.2, 0.4), "logprob_threshold": 0.0, "best_of": 5}
    torch.manual_seed(0)
    reference = whisper.transcribe(stock_tiny, audio, fp16=False, **options)
    torch.manual_seed(0)
    result = ane_tiny.transcribe(audio, **options)
    assert [s["temperature"] for s in reference["segments"]] == [0.4] * len(reference["segments"])
    assert [s["temperature"] for s in result["segments"]] == [0.4] * len(result["segments"])
    assert result["text"] == reference["text"]


@pytest.mark.slow
@pytest.mark.parametrize("size", ["tiny.en", "base"])
def test_default_options_with_fallback_equal_whisper_on_every_clip(size, request):
    """whisper's defaults (temperature fallback on) on every shipped clip, FP32."""
    directory = request.getfixturevalue("tiny_en_dir" if size == "tiny.en" else "base_dir")
    stock = build_whisper(load_weights(size, str(directory)))
    model = whisper_ane.load_model(directory, backend="torch-ane")
    for path in (
        speech_path(name) for name in ("jfk.flac", "es_test_clip.wav", "ja_test_clip.wav")
    ):
        torch.manual_seed(0)
        reference = whisper.transcribe(stock, str(path), fp16=False)
        torch.manual_seed(0)
        assert model.transcribe(str(path))["text"] == reference["text"], path.name


def test_unsupported_and_bad_input_are_one_line_errors(ane_tiny, tiny_en_dir, tmp_path):
    audio = str(speech_path("jfk.flac"))
    with pytest.raises(UsageError, match="beam search"):
        ane_tiny.transcribe(audio, beam_size=5)
    with pytest.raises(UsageError, match="neither a Whisper size nor an existing path"):
        whisper_ane.load_model(tmp_path / "missing.pt")
    with pytest.raises(UsageError, match="unknown backend 'cuda'"):
        whisper_ane.load_model("tiny.en", backend="cuda")
    no_heads = whisper_ane.load_model(tiny_en_dir, alignment_heads="none")
    with pytest.raises(UsageError, match="built without alignment heads"):
        no_heads.transcribe(audio, word_timestamps=True)
    assert "ask not" in no_heads.transcribe(audio)["text"]
