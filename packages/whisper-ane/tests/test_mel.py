"""The FFT-free log-mel model (WhisperKit's ``MelSpectrogram``) against
``whisper.log_mel_spectrogram``, as a module and as exported FP32 and FP16 packages run by
the reference executor, on the shipped speech and on the edge cases of float16 (silence,
the loudest possible signal)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import whisper
from ane_core.architecture import ExportableModel, TensorSpec
from ane_core.convert import to_coreml, trace
from ane_core.executor import Program
from ane_core.metrics import psnr
from ane_core.mil import op_counts
from ane_core.targets import Precision, parse_target

from whisper_ane.model.mel import N_FRAMES, N_SAMPLES, LogMelSpectrogram, dft_basis
from whisper_ane.speech import speech_path

CLIPS = ("jfk.flac", "es_test_clip.wav", "ja_test_clip.wav")


def _window(clip: str) -> np.ndarray:
    return whisper.pad_or_trim(whisper.load_audio(str(speech_path(clip))))


def _whisper(audio: np.ndarray, n_mels: int) -> torch.Tensor:
    return whisper.log_mel_spectrogram(torch.from_numpy(audio), n_mels)


def test_dft_basis_is_torch_stft():
    """The conv kernels give torch.stft's frames (whisper's periodic Hann window)."""
    x = torch.randn(4000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    window = torch.hann_window(400, dtype=torch.float64)
    stft = torch.stft(x, 400, 160, window=window, return_complex=True, center=False)
    frames = x.unfold(0, 400, 160)  # (frames, 400)
    basis = dft_basis().double()[:, 0, 0, :]  # (402, 400)
    ours = frames @ basis.t()
    assert torch.allclose(ours[:, :201], stft.real.t(), atol=1e-4)
    assert torch.allclose(ours[:, 201:], stft.imag.t(), atol=1e-4)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_module_equals_whisper_on_speech(n_mels):
    module = LogMelSpectrogram(n_mels).eval()
    for clip in CLIPS:
        audio = _window(clip)
        out = module(torch.from_numpy(audio))
        assert out.shape == (1, n_mels, 1, N_FRAMES)
        assert psnr(_whisper(audio, n_mels), out[0, :, 0]) >= 120, clip


@pytest.fixture(scope="module")
def mel_packages(tmp_path_factory):
    """The 80-mel model exported at each precision (float I/O in that precision)."""
    directory = tmp_path_factory.mktemp("mel")
    module = LogMelSpectrogram(80).eval()
    model = ExportableModel(
        module,
        [TensorSpec("audio", (N_SAMPLES,), "samples")],
        [TensorSpec("melspectrogram_features", (1, 80, 1, N_FRAMES), "log-mel")],
        (torch.from_numpy(_window("jfk.flac")),),
    )
    paths = {}
    for precision in Precision:
        traced = trace(model)
        path = directory / f"mel-{precision.value}.mlpackage"
        to_coreml(traced, model, precision, parse_target("macOS13")[1]).save(str(path))
        paths[precision] = path
    return paths


@pytest.mark.parametrize(("precision", "floor"), [(Precision.FP32, 110), (Precision.FP16, 60)])
def test_packages_equal_whisper_on_speech(mel_packages, precision, floor):
    program = Program.load(mel_packages[precision])
    for clip in CLIPS:
        audio = _window(clip)
        out = program({"audio": audio})["melspectrogram_features"]
        assert out.dtype == precision.numpy_dtype
        assert psnr(_whisper(audio, 80), out[0, :, 0].astype(np.float32)) >= floor, clip


def test_fp16_package_has_no_fft_and_no_cast(mel_packages):
    counts = op_counts(mel_packages[Precision.FP16])
    assert counts["conv"] == 2 and counts["cast"] == 0
    assert not {op for op in counts if "fft" in op}


@pytest.mark.parametrize(
    "signal", ["silence", "full-scale square wave", "half silent", "-42 dBFS", "-62 dBFS"]
)
def test_fp16_package_holds_at_the_float16_edges(mel_packages, signal):
    """Silence: log10(0) = -inf in float16 must floor at -10 as whisper's clamp does. A
    full-scale square wave: the largest power there is (|X| <= 200). Quiet speech: without
    the level step its quiet bins fall into float16's subnormals (21 dB at -42 dBFS)."""
    audio = np.zeros(N_SAMPLES, dtype=np.float32)
    if signal == "full-scale square wave":
        audio = np.sign(np.sin(np.arange(N_SAMPLES) * 2 * np.pi * 440 / 16000)).astype(np.float32)
    elif signal == "half silent":
        audio[: N_SAMPLES // 2] = _window("jfk.flac")[: N_SAMPLES // 2]
    elif signal.endswith("dBFS"):  # jfk peaks at -2 dBFS
        audio = _window("jfk.flac") * np.float32(10 ** (int(signal.split()[0]) / 20 + 0.1))
    out = Program.load(mel_packages[Precision.FP16])({"audio": audio})["melspectrogram_features"]
    assert np.isfinite(out).all()
    expected = _whisper(audio, 80)
    if signal == "silence":  # every bin clamps to log10(1e-10): (-10 + 4) / 4
        assert torch.equal(expected, torch.full_like(expected, -1.5))
        assert np.array_equal(out[0, :, 0], np.full((80, N_FRAMES), -1.5, np.float16))
    else:
        assert psnr(expected, out[0, :, 0].astype(np.float32)) >= 55
