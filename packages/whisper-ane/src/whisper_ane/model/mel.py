"""Whisper's log-mel spectrogram as a model with no FFT: what WhisperKit's ``MelSpectrogram``
computes on the device.

``whisper.audio.log_mel_spectrogram`` (openai-whisper ``whisper/audio.py``) is
``torch.stft(n_fft=400, hop=160, periodic Hann window, center=True, reflect padding)``, the
last frame dropped, ``|X|^2``, whisper's mel filterbank, ``clamp(min=1e-10).log10()``,
``max(x, x.max() - 8)``, ``(x + 4) / 4``. Core ML has no FFT op the Neural Engine runs, so
here the STFT is a strided convolution with the windowed DFT basis (``cos`` rows for the real
part, ``-sin`` rows for the imaginary part) over the reflect-padded audio, and the mel
filterbank a 1x1 convolution, both in the channels-first ``(1, C, 1, frames)`` layout the ANE
wants.

Two details make the frames match whisper's exactly without slicing: the padding is 200
samples on the left (``n_fft // 2``, as ``center=True`` pads) but only 40 on the right, which
is exactly what the last kept frame reads (the 3001st frame, which whisper drops, is never
computed); the first 40 reflected samples are the same as with a 200-sample pad.

float16 needs two more steps, both exact in real arithmetic:

* Level. whisper keeps 8 decades of power below the loudest bin; float16 holds about 9
  decades of normal numbers below 65504 and loses precision in its subnormals (below 6e-5).
  Full-scale speech fits, but at a peak of 0.08 (-22 dBFS) the quiet bins fall into the
  subnormals (37 dB against whisper, 21 dB at -42 dBFS). So the audio is first scaled to a
  peak of 1 (``gain = 1 / max|audio|``, at most :data:`MAX_GAIN`), which moves every power
  by ``gain^2``, and ``2 * log10(gain)`` is subtracted after the log: any level then keeps
  the precision of full-scale audio. The power fits float16 at full scale:
  ``|X| <= sum(window) = 200``, so ``|X|^2 <= 40000 < 65504``.
* Floor. whisper's ``clamp(min=1e-10).log10()`` is below float16's range (coremltools
  raises the constant to the smallest subnormal, 6e-8, a floor of -7.2 instead of -10). The
  power is never negative (squares through non-negative filters), so
  ``max(log10(m), -10)`` is the same function, and -10 survives float16: a silent bin gives
  ``log10(0) = -inf``, clamped to -10 as whisper's is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import whisper.audio
from torch import Tensor, nn

N_FFT = whisper.audio.N_FFT
HOP_LENGTH = whisper.audio.HOP_LENGTH
N_SAMPLES = whisper.audio.N_SAMPLES
"""480000 samples: 30 s at 16 kHz, the input length."""
N_FRAMES = whisper.audio.N_FRAMES
"""3000 frames: the output length."""
N_BINS = N_FFT // 2 + 1
"""201 frequency bins of a real 400-point DFT."""
MAX_GAIN = 4096.0
"""The most the level step lifts audio (a peak of 2.4e-4, -72 dBFS: below it, silence as
far as 16-bit audio goes); a power of two, exact in float16, and far from its overflow."""


def dft_basis() -> Tensor:
    """``(2 * 201, 1, 1, 400)``: the periodic-Hann-windowed DFT as conv kernels, real rows
    (``cos``) then imaginary rows (``-sin``), computed in float64 and stored in float32."""
    n = torch.arange(N_FFT, dtype=torch.float64)
    k = torch.arange(N_BINS, dtype=torch.float64)
    angle = 2.0 * torch.pi * k[:, None] * n[None, :] / N_FFT
    window = torch.hann_window(N_FFT, periodic=True, dtype=torch.float64)
    basis = torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window])
    return basis.float()[:, None, None, :]


class LogMelSpectrogram(nn.Module):
    """30 s of 16 kHz audio ``(480000,)`` to whisper's log-mel ``(1, n_mels, 1, 3000)``."""

    def __init__(self, n_mels: int) -> None:
        super().__init__()
        self.register_buffer("basis", dft_basis())
        filters = whisper.audio.mel_filters("cpu", n_mels)  # (n_mels, 201), whisper's assets
        self.register_buffer("filters", filters[:, :, None, None].clone())

    def forward(self, audio: Tensor) -> Tensor:
        gain = 1.0 / torch.clamp(audio.abs().max(), min=1.0 / MAX_GAIN)  # peak to 1
        x = (audio * gain).reshape(1, 1, 1, -1)
        right = N_FFT - HOP_LENGTH - N_FFT // 2  # 40: what the last kept frame reads
        x = F.pad(x, (N_FFT // 2, right, 0, 0), mode="reflect")
        spectrum = F.conv2d(x, self.basis, stride=(1, HOP_LENGTH))  # (1, 402, 1, frames)
        real, imaginary = spectrum[:, :N_BINS], spectrum[:, N_BINS:]
        power = real * real + imaginary * imaginary
        mel = F.conv2d(power, self.filters)
        # log10 of the unscaled power, floored as whisper's clamp(mel, 1e-10) (mel >= 0)
        log_spec = torch.clamp(mel.log10() - 2.0 * gain.log10(), min=-10.0)
        log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
        return (log_spec + 4.0) / 4.0
