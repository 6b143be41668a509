"""Audio files to text with a chosen backend: what ``ane transcribe whisper`` calls.

Why a separate module: the CLI (ane-bench) knows no model; it asks the architecture for a
transcriber and prints what comes back. The result is plain JSON-ready data: the text,
whisper's segments and where the time went.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ane_core.architecture import NATIVE_LAYOUT, Architecture
from ane_core.errors import UsageError
from ane_core.targets import Precision

from whisper_ane.runtime.backends import TORCH_BACKENDS, torch_backend
from whisper_ane.runtime.decoding import DecodeStats, StaticCacheWhisper, transcribe
from whisper_ane.runtime.layout_transcription import layout_transcriber
from whisper_ane.runtime.package_backend import PACKAGE_BACKENDS, exported_backend
from whisper_ane.weights.source import LoadedWeights

BACKENDS: tuple[str, ...] = (*TORCH_BACKENDS, *PACKAGE_BACKENDS)
"""Backends ``ane transcribe --backend`` accepts."""

_SEGMENT_FIELDS = ("id", "seek", "start", "end", "text", "tokens", "avg_logprob", "no_speech_prob")

Transcriber = Callable[..., dict[str, Any]]


def check_backend(backend: str) -> None:
    """One-line error for an unknown backend, before any weights are loaded."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}.", f"Use one of: {', '.join(BACKENDS)}.")


def make_transcriber(
    architecture: Architecture,
    weights: LoadedWeights,
    *,
    backend: str = "torch-ane",
    precision: Precision = Precision.FP32,
    layout: str = NATIVE_LAYOUT,
) -> Transcriber:
    """Build the backend once; the returned function transcribes one file per call.

    It takes the path and ``language`` (None: detect), ``task`` (transcribe/translate) and
    ``without_timestamps``, and returns ``{"audio", "language", "text", "segments",
    "timings"}``. Decoding is greedy at temperature 0, as ``whisper.transcribe`` with
    ``temperature=0.0``. ``architecture`` is the registered Whisper architecture, which
    exports the packages of the package backends. ``layout`` ``whisperkit``: decode with an
    exported WhisperKit folder as WhisperKit drives it (:mod:`whisper_ane.runtime.
    layout_transcription`; ``backend`` mil or coreml, FP16, always without timestamps).
    """
    check_backend(backend)
    if layout != NATIVE_LAYOUT:
        return layout_transcriber(
            architecture, weights, layout=layout, backend=backend, precision=precision
        )
    if backend in PACKAGE_BACKENDS:  # the exported packages: reference executor or Core ML
        model = StaticCacheWhisper(exported_backend(architecture, weights, backend, precision))
    else:
        model = StaticCacheWhisper(torch_backend(backend, weights, precision))

    def transcribe_file(
        path: str | Path,
        *,
        language: str | None = None,
        task: str = "transcribe",
        without_timestamps: bool = False,
    ) -> dict[str, Any]:
        if not Path(path).is_file():
            raise UsageError(f"audio file {path} does not exist.", "Pass a path to a sound file.")
        model.stats = DecodeStats()
        start = time.perf_counter()
        result = transcribe(
            model, str(path), language=language, task=task, without_timestamps=without_timestamps
        )
        timings = {"total_s": round(time.perf_counter() - start, 4), **model.stats.as_dict()}
        return {
            "audio": str(path),
            "language": result["language"],
            "text": result["text"].strip(),
            "segments": [{k: s[k] for k in _SEGMENT_FIELDS} for s in result["segments"]],
            "timings": timings,
        }

    return transcribe_file
