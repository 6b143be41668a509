"""End to end: the static-cache decoders give exactly openai-whisper's greedy tokens.

The reference is ``whisper.transcribe`` / ``whisper.decode`` on the stock model with the same
weights and options (temperature 0, float32). tiny.en runs by default; the multilingual
base model on every shipped clip (whisper_ane.speech) is marked slow.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import whisper
from ane_core.errors import UsageError
from ane_core.metrics import psnr
from ane_core.targets import Precision
from whisper.decoding import DecodingOptions

from whisper_ane.runtime.backends import torch_backend
from whisper_ane.runtime.decoding import StaticCacheWhisper, load_mel, transcribe
from whisper_ane.speech import CLIPS, speech_path
from whisper_ane.weights.source import build_whisper, load_weights


def _tokens(result: dict) -> list[list[int]]:
    return [segment["tokens"] for segment in result["segments"]]


@pytest.fixture(scope="module")
def tiny_stock(tiny_en_weights):
    return build_whisper(tiny_en_weights)


@pytest.fixture(scope="module")
def tiny_ane(tiny_en_weights):
    return StaticCacheWhisper(torch_backend("torch-ane", tiny_en_weights, Precision.FP32))


def test_transcribe_jfk_tokens_equal_whisper(tiny_stock, tiny_ane, jfk_audio):
    reference = whisper.transcribe(tiny_stock, str(jfk_audio), temperature=0.0, fp16=False)
    result = transcribe(tiny_ane, str(jfk_audio), temperature=0.0)
    assert _tokens(result) == _tokens(reference)
    assert result["text"] == reference["text"]
    assert [(s["start"], s["end"]) for s in result["segments"]] == [
        (s["start"], s["end"]) for s in reference["segments"]
    ]
    assert "ask not what your country can do for you" in result["text"].lower()


@pytest.mark.parametrize("without_timestamps", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_decode_window_equals_whisper_decode(tiny_stock, tiny_ane, jfk_audio, without_timestamps):
    mel = load_mel(str(jfk_audio), tiny_stock.dims.n_mels)
    options = DecodingOptions(
        language="en", fp16=False, without_timestamps=without_timestamps, max_initial_timestamp=0.5
    )
    reference = whisper.decode(tiny_stock, mel, options)
    result = tiny_ane.decode(mel, options)
    assert result.tokens == reference.tokens
    assert any(t >= 50363 for t in result.tokens) != without_timestamps  # timestamp tokens
    assert result.avg_logprob == pytest.approx(reference.avg_logprob, abs=1e-4)
    assert result.no_speech_prob == pytest.approx(reference.no_speech_prob, abs=1e-5)


@pytest.mark.slow
def test_long_audio_windows_and_seek_equal_whisper(tiny_stock, tiny_ane, jfk_audio):
    """35 s of audio: two windows, the second starting where whisper's seek puts it."""
    audio = whisper.load_audio(str(jfk_audio))
    audio = np.concatenate([audio, audio, audio[: 13 * whisper.audio.SAMPLE_RATE]])
    options = {"temperature": 0.0, "condition_on_previous_text": True}
    reference = whisper.transcribe(tiny_stock, audio, fp16=False, **options)
    result = transcribe(tiny_ane, audio, **options)
    assert len({s["seek"] for s in reference["segments"]}) >= 2
    assert _tokens(result) == _tokens(reference)
    assert [s["seek"] for s in result["segments"]] == [s["seek"] for s in reference["segments"]]


@pytest.mark.slow
def test_fp16_ane_text_equals_fp32(tiny_en_weights, tiny_ane, jfk_audio):
    """FP16 on CPU: same text; timestamps may move by a few tokens (reported, not required)."""
    fp16 = StaticCacheWhisper(torch_backend("torch-ane", tiny_en_weights, Precision.FP16))
    assert (
        transcribe(fp16, str(jfk_audio), temperature=0.0)["text"]
        == transcribe(tiny_ane, str(jfk_audio), temperature=0.0)["text"]
    )


def test_unsupported_modes_are_one_line_errors(tiny_en_weights, tiny_ane, jfk_audio):
    with pytest.raises(UsageError, match="torch-stock runs in fp32 only"):
        torch_backend("torch-stock", tiny_en_weights, Precision.FP16)
    with pytest.raises(UsageError, match="unknown backend 'cuda'"):
        torch_backend("cuda", tiny_en_weights)
    with pytest.raises(UsageError, match="beam search"):
        tiny_ane.decode(torch.zeros(80, 3000), DecodingOptions(beam_size=2, language="en"))
    with pytest.raises(UsageError, match="beam search"):
        transcribe(tiny_ane, str(jfk_audio), beam_size=5)


@pytest.fixture(scope="module")
def base_weights(base_dir):
    return load_weights("base", str(base_dir))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("clip", "language"),
    [(clip.name, clip.language) for clip in CLIPS.values()],
)
def test_base_multilingual_tokens_and_language_equal_whisper(base_weights, clip, language):
    path = speech_path(clip)
    stock = build_whisper(base_weights)
    reference = whisper.transcribe(stock, str(path), temperature=0.0, fp16=False)
    ane = StaticCacheWhisper(torch_backend("torch-ane", base_weights, Precision.FP32))
    result = transcribe(ane, str(path), temperature=0.0)
    assert reference["language"] == result["language"] == language
    assert _tokens(result) == _tokens(reference)

    # Teacher-forced per-step logits of the ANE decoder, fp32 and fp16, on this clip.
    mel = load_mel(str(path), base_weights.dims.n_mels)
    tokenizer = whisper.tokenizer.get_tokenizer(True, language=language, task="transcribe")
    tokens = [*tokenizer.sot_sequence, *_tokens(reference)[0]]
    with torch.no_grad():
        features = stock.encoder(mel[None])
        expected = stock.decoder(torch.tensor([tokens]), features)[0]
        fp32 = ane.logits(torch.tensor([tokens]), features)[0]
        fp16_model = StaticCacheWhisper(torch_backend("torch-ane", base_weights, Precision.FP16))
        fp16 = fp16_model.logits(torch.tensor([tokens]), features)[0]
    assert min(psnr(expected[i], fp32[i]) for i in range(len(tokens))) >= 100
    assert min(psnr(expected[i], fp16[i]) for i in range(len(tokens))) >= 35
    assert torch.equal(fp32.argmax(-1), expected.argmax(-1))
    # FP16 picks the same tokens wherever the decoder picks: from the last prompt position
    # on. Inside the prompt the next token is forced, and on the Japanese clip base's FP16
    # logits after <|ja|> lean to <|translate|> where FP32's lean to <|transcribe|> (a
    # near tie, never sampled).
    picked = len(tokenizer.sot_sequence) - 1
    assert torch.equal(fp16.argmax(-1)[picked:], expected.argmax(-1)[picked:])


def test_language_detection_equals_whisper_on_a_multilingual_model(jfk_audio):
    """Seeded random multilingual tiny weights: fast, and the detection path is whisper's."""
    weights = load_weights("tiny", "random:3")
    mel = load_mel(str(jfk_audio), weights.dims.n_mels)
    stock_token, stock_probs = whisper.detect_language(build_whisper(weights), mel)
    model = StaticCacheWhisper(torch_backend("torch-ane", weights, Precision.FP32))
    token, probs = whisper.detect_language(model, mel)
    assert int(token) == int(stock_token)
    assert probs.keys() == stock_probs.keys()
    assert max(abs(probs[k] - stock_probs[k]) for k in probs) < 1e-5
