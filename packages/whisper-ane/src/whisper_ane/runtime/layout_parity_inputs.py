"""What ``ane parity whisper --layout NAME`` feeds each package of an app layout.

The same real data as the native check (:mod:`whisper_ane.runtime.parity_inputs`), in the
layout's I/O: each audio file's first 30 s (``MelSpectrogram`` takes the samples, whisper
pads or trims them), whisper's log-mel of it (the encoders), and one real decoding step
of the stock decoder over the prompt and the first greedy tokens (``TextDecoder``: caches
filled by stock whisper, the stock encoder's features), so each package and its reference
see the same numbers and only the package can differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import whisper
from ane_core.architecture import ParityCase
from ane_core.errors import UsageError

from whisper_ane.export.layouts.whispercpp import LAYOUT as WHISPERCPP
from whisper_ane.export.layouts.whisperkit import DECODER, ENCODER, MEL
from whisper_ane.export.layouts.whisperkit import LAYOUT as WHISPERKIT
from whisper_ane.model.mel import N_SAMPLES
from whisper_ane.runtime.parity_inputs import decoder_step, mels, stock_runner
from whisper_ane.weights.source import LoadedWeights


def _audio(files: Sequence[str]) -> list[tuple[str, torch.Tensor]]:
    """``(name, (480000,) samples)`` per file, or seeded speech-level noise."""
    if not files:
        noise = 0.1 * torch.randn(N_SAMPLES, generator=torch.Generator().manual_seed(0))
        return [("example", noise)]
    return [
        (Path(f).name, torch.from_numpy(whisper.pad_or_trim(whisper.load_audio(str(f)))))
        for f in files
    ]


def _whisperkit_step(weights: LoadedWeights, mel: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """A real stock decoding step in WhisperKit's ``TextDecoder`` I/O, in its input order."""
    features = stock_runner("encoder", weights)({"mel": mel.numpy()})["encoder_output"]
    step = decoder_step(weights, torch.from_numpy(features))

    def whisperkit_cache(cache: np.ndarray) -> torch.Tensor:  # (L, S, C) -> (1, L*C, 1, S)
        layers, positions, _ = cache.shape
        return torch.from_numpy(cache.transpose(0, 2, 1).reshape(1, -1, 1, positions).copy())

    position = int(np.argmax(step["kv_cache_update_mask"]))
    return (
        torch.from_numpy(step["token"]),
        torch.tensor([position], dtype=torch.int32),
        whisperkit_cache(step["key_cache"]),
        whisperkit_cache(step["value_cache"]),
        torch.from_numpy(step["kv_cache_update_mask"]),
        torch.from_numpy(features.transpose(0, 2, 1)[:, :, None, :].copy()),
        torch.from_numpy(step["key_padding_mask"]),
    )


def layout_parity_inputs(
    layout: str, package: str, weights: LoadedWeights, files: Sequence[str] = ()
) -> list[ParityCase]:
    """One case per audio file (see the module docstring) for ``package`` of ``layout``."""
    if layout == WHISPERCPP.name and package == "encoder":
        return [ParityCase(name, (mel,)) for name, mel in mels(weights, files)]
    if layout == WHISPERKIT.name and package == MEL:
        return [ParityCase(name, (audio,)) for name, audio in _audio(files)]
    if layout == WHISPERKIT.name and package == ENCODER:
        return [ParityCase(name, (mel[:, :, None, :],)) for name, mel in mels(weights, files)]
    if layout == WHISPERKIT.name and package == DECODER:
        cases = []
        for name, mel in mels(weights, files):
            inputs = _whisperkit_step(weights, mel)
            cases.append(ParityCase(f"{name}@{int(inputs[1][0])}", inputs))
        return cases
    raise UsageError(f"whisper --layout {layout} has no package {package!r}.")
