"""``ane transcribe whisper --layout whisperkit``: decode with an exported WhisperKit folder,
driven the way WhisperKit drives it (:mod:`whisper_ane.runtime.whisperkit_driver`).

Why only WhisperKit: whisper.cpp's layout is an encoder alone (whisper.cpp decodes with its
own ggml decoder), so there is nothing of its loop to run here. The folder is exported
first (kept in ``$ANE_PACKAGES_DIR`` when set, as the native package backends do).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import whisper
from ane_core.architecture import Architecture
from ane_core.errors import UsageError
from ane_core.executor.coreml import require_macos
from ane_core.layout_export import export_layout, plan_layout
from ane_core.targets import DEFAULT_TARGET, Precision, parse_target

from whisper_ane.export.layouts.whispercpp import LAYOUT as WHISPERCPP
from whisper_ane.export.layouts.whisperkit import LAYOUT as WHISPERKIT
from whisper_ane.runtime.package_backend import packages_directory
from whisper_ane.runtime.whisperkit_driver import WhisperKitFolder
from whisper_ane.weights.source import LoadedWeights

FOLDER_BACKENDS = ("mil", "coreml")
"""What runs a WhisperKit folder's models: the reference executor, or Core ML (macOS)."""


def check_layout_options(layout: str, backend: str, precision: Precision) -> None:
    """One-line errors for what a layout cannot transcribe with, before weights load."""
    if layout == WHISPERCPP.name:
        raise UsageError(
            "the whispercpp layout is an encoder only (whisper.cpp decodes with its own ggml "
            "decoder), so it cannot transcribe here.",
            "Use --layout whisperkit or native.",
        )
    if layout != WHISPERKIT.name:
        raise UsageError(f"whisper has no --layout {layout!r}.", "Use native or whisperkit.")
    if backend not in FOLDER_BACKENDS:
        raise UsageError(
            f"--layout {layout} runs the exported folder, not --backend {backend}.",
            "Use --backend mil (reference executor) or coreml (macOS).",
        )
    if precision is not Precision.FP16:
        raise UsageError(
            f"--layout {layout} is FP16 only (WhisperKit reads float16 outputs).",
            "Use --precision fp16.",
        )
    if backend == "coreml":
        require_macos()


def whisperkit_folder(
    architecture: Architecture, weights: LoadedWeights, size: str | None
) -> tuple[Path, Any]:
    """The WhisperKit folder of ``weights``, exported unless already kept; returns it and
    the temporary directory to keep alive while it is read (``None`` when kept)."""
    directory, scratch = packages_directory(weights)
    plan = plan_layout(
        architecture,
        WHISPERKIT.name,
        size=size,
        name=None,
        checkpoint=weights.source_dir or weights.checkpoint_path,
        output_dir=directory,
        force=True,
    )
    folder = directory / plan.outputs[0]
    if not folder.is_dir():
        export_layout(
            architecture,
            plan,
            size=size,
            weights=weights,
            precision=Precision.FP16,
            target=parse_target(DEFAULT_TARGET),
            output_dir=directory,
            compile_models=False,
        )
    return folder, scratch


def layout_transcriber(
    architecture: Architecture,
    weights: LoadedWeights,
    *,
    layout: str,
    backend: str,
    precision: Precision,
    size: str | None = None,
):
    """A function of one audio path, as :func:`whisper_ane.runtime.transcription.
    make_transcriber` returns, decoding with the layout's packages (always without
    timestamps: the app's prompt ends in ``<|notimestamps|>``)."""
    check_layout_options(layout, backend, precision)
    path, scratch = whisperkit_folder(architecture, weights, size)
    folder = WhisperKitFolder(path, backend=backend)

    def transcribe_file(
        audio_path: str | Path,
        *,
        language: str | None = None,
        task: str = "transcribe",
        without_timestamps: bool = True,
    ) -> dict[str, Any]:
        if not Path(audio_path).is_file():
            raise UsageError(f"audio file {audio_path} does not exist.", "Pass a sound file.")
        start = time.perf_counter()
        _ = scratch  # the exported folder lives as long as this function
        result = folder.transcribe(
            whisper.load_audio(str(audio_path)), language=language, task=task
        )
        return {
            "audio": str(audio_path),
            "precision": precision.value,
            "language": result["language"],
            "text": result["text"].strip(),
            "segments": result["segments"],
            "timings": {"total_s": round(time.perf_counter() - start, 4)},
        }

    return transcribe_file
