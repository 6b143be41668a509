"""ANE encoder vs stock encoder on real speech, and what the exported packages contain."""

from __future__ import annotations

import pytest
import torch
import whisper
from ane_core.export import export_component
from ane_core.metrics import psnr
from ane_core.targets import Precision, parse_target

from whisper_ane.architecture import WhisperArchitecture


@pytest.fixture(scope="module")
def jfk_mel(jfk_audio, tiny_en_weights):
    audio = whisper.pad_or_trim(whisper.load_audio(str(jfk_audio)))
    return whisper.log_mel_spectrogram(audio, n_mels=tiny_en_weights.dims.n_mels)[None]


@pytest.fixture(scope="module")
def encoders(tiny_en_weights):
    arch = WhisperArchitecture()
    return arch.build("encoder", "stock", tiny_en_weights), arch.build(
        "encoder", "ane", tiny_en_weights
    )


@pytest.fixture(scope="module")
def stock_features(encoders, jfk_mel):
    with torch.no_grad():
        return encoders[0].module(jfk_mel)


def _ane_features(module, mel, dtype=torch.float32):
    with torch.no_grad():
        out = module.to(dtype)(mel.unsqueeze(2).to(dtype)).float()
    module.float()
    return out.squeeze(2).transpose(1, 2)  # (1, C, 1, S) -> (1, S, C)


def test_ane_encoder_fp32_matches_stock(encoders, jfk_mel, stock_features):
    assert psnr(stock_features, _ane_features(encoders[1].module, jfk_mel)) >= 100


def test_ane_encoder_fp16_on_cpu_is_close_to_stock_fp32(encoders, jfk_mel, stock_features):
    assert psnr(stock_features, _ane_features(encoders[1].module, jfk_mel, torch.float16)) >= 35


def test_same_weights_drive_stock_whisper_to_the_reference_text(tiny_en_weights, jfk_audio):
    """Guards the CT2 mapping that the parity above relies on."""
    from whisper_ane.weights.source import build_whisper

    model = build_whisper(tiny_en_weights)
    text = whisper.transcribe(model, str(jfk_audio), temperature=0.0, fp16=False)["text"]
    assert "ask not what your country can do for you" in text.lower()


@pytest.mark.parametrize("variant", ["ane", "stock"])
def test_fp16_export_cast_census(tiny_en_weights, tmp_path, variant):
    arch = WhisperArchitecture()
    result = export_component(
        arch,
        size="tiny.en",
        component="encoder",
        variant=variant,
        weights=tiny_en_weights,
        precision=Precision.FP16,
        target=parse_target("macOS13"),
        output_dir=tmp_path,
    )
    assert result.path.name == f"whisper-tiny.en-encoder-{variant}-fp16.mlpackage"
    if variant == "ane":
        assert result.op_counts["cast"] == 0
    # The stock export is produced for comparison; its casts are reported, not required.
    assert sum(result.op_counts.values()) > 0
