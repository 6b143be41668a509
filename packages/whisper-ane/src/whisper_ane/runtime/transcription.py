"""Audio files to text with a chosen backend: what ``ane transcribe whisper`` and
``whisper_ane.load_model`` call.

Why a separate module: the CLI (ane-bench) knows no model; it asks the architecture for a
transcriber, passes whisper's own options through under whisper CLI's names, and prints what
comes back. Everything that decides the text is ``whisper.transcribe`` (see
:mod:`whisper_ane.runtime.decoding`); files are written by whisper's own writers
(``whisper.utils.get_writer``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import whisper.utils
from ane_core.architecture import NATIVE_LAYOUT, Architecture
from ane_core.compress import NO_COMPRESSION, Compression
from ane_core.errors import OutputError, UsageError
from ane_core.targets import Precision

from whisper_ane.export.layouts import refuse_unused_options
from whisper_ane.runtime.backends import TORCH_BACKENDS, torch_backend
from whisper_ane.runtime.decoding import (
    DecodeStats,
    StaticCacheWhisper,
    beam_search_refused,
    no_alignment_heads,
    transcribe,
)
from whisper_ane.runtime.layout_transcription import check_layout_options, layout_transcriber
from whisper_ane.runtime.package_backend import PACKAGE_BACKENDS, exported_backend
from whisper_ane.weights.source import LoadedWeights

BACKENDS: tuple[str, ...] = (*TORCH_BACKENDS, *PACKAGE_BACKENDS)
"""Backends ``ane transcribe --backend`` and ``whisper_ane.load_model`` accept."""

OUTPUT_FORMATS = ("txt", "vtt", "srt", "tsv", "json", "all")
"""whisper's writers (``whisper.utils.get_writer``)."""

WRITER_OPTIONS = ("highlight_words", "max_line_width", "max_line_count", "max_words_per_line")
"""Options of whisper's subtitle writers; all but the first need word timestamps."""

_SEGMENT_FIELDS = (
    "id",
    "seek",
    "start",
    "end",
    "text",
    "tokens",
    "temperature",
    "avg_logprob",
    "compression_ratio",
    "no_speech_prob",
    "words",
)

Transcriber = Callable[..., dict[str, Any]]


def check_backend(backend: str) -> None:
    """One-line error for an unknown backend, before any weights are loaded."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}.", f"Use one of: {', '.join(BACKENDS)}.")


def default_precision(backend: str) -> Precision:
    """FP16 for the exported packages (what ships to the Neural Engine), FP32 for the PyTorch
    modules (the CPU reference; stock whisper's LayerNorm has no float16 CPU kernel)."""
    return Precision.FP16 if backend in PACKAGE_BACKENDS else Precision.FP32


def static_cache_model(
    architecture: Architecture,
    weights: LoadedWeights,
    *,
    backend: str = "torch-ane",
    precision: Precision | None = None,
    build_options: Mapping[str, Any] | None = None,
    compression: Compression = NO_COMPRESSION,
) -> StaticCacheWhisper:
    """A whisper-shaped model on ``backend``: PyTorch modules, or exported packages (reused
    from ``$ANE_PACKAGES_DIR`` when set) run by the reference executor or Core ML.
    ``architecture``: the registered Whisper architecture, which exports the packages;
    ``build_options``: as ``ane export whisper`` takes them (e.g. ``alignment_heads``);
    ``compression``: of the exported packages (the PyTorch modules refuse any)."""
    check_backend(backend)
    precision = precision or default_precision(backend)
    options = dict(build_options or {})
    if backend in PACKAGE_BACKENDS:  # the exported packages: reference executor or Core ML
        runtime = exported_backend(
            architecture,
            weights,
            backend,
            precision,
            compression=compression,
            build_options=options,
        )
    elif compression.enabled:
        raise UsageError(
            f"compression {compression.name} applies to exported packages, not {backend}.",
            f"Use a package backend ({', '.join(PACKAGE_BACKENDS)}).",
        )
    else:
        runtime = torch_backend(backend, weights, precision, **options)
    return StaticCacheWhisper(runtime)


def temperatures(temperature: float, increment: float | None) -> tuple[float, ...]:
    """whisper CLI's rule: from ``temperature`` up to 1.0 by ``increment`` (the fallback), or
    the one temperature when ``increment`` is None."""
    if increment is None:
        return (temperature,)
    return tuple(float(t) for t in np.arange(temperature, 1.0 + 1e-6, increment))


def check_transcription(
    *,
    backend: str,
    precision: Precision | None,
    layout: str,
    options: Mapping[str, Any],
    **build_options: Any,
) -> None:
    """What a transcription would refuse, said before any weights load (one line each):
    an unknown backend, a layout that cannot transcribe with these settings, beam search,
    word timestamps from a decoder built without alignment heads, writer options without
    word timestamps."""
    check_backend(backend)
    if layout != NATIVE_LAYOUT:
        check_layout_options(layout, backend, precision or Precision.FP16)
        refuse_unused_options(layout, build_options)
        return
    if options.get("beam_size") is not None:
        raise beam_search_refused()
    word_timestamps = bool(options.get("word_timestamps"))
    if word_timestamps and build_options.get("alignment_heads") == ():
        raise no_alignment_heads()
    check_writer_options(options, word_timestamps)


def check_writer_options(options: Mapping[str, Any], word_timestamps: bool) -> None:
    """whisper CLI's rule: the line-layout options need word timestamps."""
    for name in WRITER_OPTIONS[1:]:
        if options.get(name) is not None and not word_timestamps:
            flag = "--" + name
            raise UsageError(f"{flag} needs word timestamps.", "Add --word-timestamps.")


def write_outputs(
    result: dict[str, Any],
    audio: str | Path,
    output_format: str,
    output_dir: str | Path,
    writer_options: Mapping[str, Any],
) -> list[str]:
    """Write ``result`` with whisper's writer(s) into ``output_dir``; the paths written."""
    output_dir = Path(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        writer = whisper.utils.get_writer(output_format, str(output_dir))
        writer(result, str(audio), **{k: writer_options.get(k) for k in WRITER_OPTIONS})
    except OSError as error:
        raise OutputError(
            f"cannot write the {output_format} transcript of {Path(audio).name} into "
            f"{output_dir} ({error.strerror or error}).",
            "Pick another directory with -o.",
        ) from None
    formats = OUTPUT_FORMATS[:-1] if output_format == "all" else (output_format,)
    stem = Path(audio).stem
    return [str(output_dir / f"{stem}.{fmt}") for fmt in formats]


def make_transcriber(
    architecture: Architecture,
    weights: LoadedWeights,
    *,
    backend: str = "torch-ane",
    precision: Precision | None = None,
    build_options: Mapping[str, Any] | None = None,
    layout: str = NATIVE_LAYOUT,
    size: str | None = None,
    compression: Compression = NO_COMPRESSION,
) -> Transcriber:
    """Build the backend once; the returned function transcribes one file per call.

    It takes the path and ``whisper.transcribe``'s keyword options (with whisper's defaults;
    the temperature fallback as whisper's CLI gives it: ``temperature`` plus
    ``temperature_increment_on_fallback``), and optionally ``output_format`` with
    ``output_dir`` and the writers' options. It returns ``{"audio", "language", "text",
    "segments" (with ``words`` under word timestamps), "timings", "outputs"}``.
    ``layout`` ``whisperkit``: decode with an exported WhisperKit folder as WhisperKit drives
    it (:mod:`whisper_ane.runtime.layout_transcription`; ``backend`` mil or coreml, FP16,
    greedy and without timestamps; it takes ``language``, ``task`` and
    ``without_timestamps`` only; ``size`` names its folder). ``compression``: of the
    exported packages of a package backend (``ane_core.compress``).
    """
    check_backend(backend)
    if layout != NATIVE_LAYOUT:
        return layout_transcriber(
            architecture,
            weights,
            layout=layout,
            backend=backend,
            precision=precision or Precision.FP16,
            size=size,
        )
    precision = precision or default_precision(backend)
    model = static_cache_model(
        architecture,
        weights,
        backend=backend,
        precision=precision,
        build_options=build_options,
        compression=compression,
    )

    def transcribe_file(
        path: str | Path,
        *,
        temperature: float | tuple[float, ...] = 0.0,
        temperature_increment_on_fallback: float | None = 0.2,
        output_format: str | None = None,
        output_dir: str | Path = ".",
        **options: Any,
    ) -> dict[str, Any]:
        if not Path(path).is_file():
            raise UsageError(f"audio file {path} does not exist.", "Pass a path to a sound file.")
        writer_options = {name: options.pop(name, None) for name in WRITER_OPTIONS}
        check_writer_options(writer_options, bool(options.get("word_timestamps")))
        if not isinstance(temperature, tuple):
            temperature = temperatures(temperature, temperature_increment_on_fallback)
        model.stats = DecodeStats()
        start = time.perf_counter()
        result = transcribe(model, str(path), temperature=temperature, **options)
        timings = {"total_s": round(time.perf_counter() - start, 4), **model.stats.as_dict()}
        written = (
            write_outputs(result, path, output_format, output_dir, writer_options)
            if output_format
            else []
        )
        return {
            "audio": str(path),
            "precision": precision.value,
            "language": result["language"],
            "text": result["text"].strip(),
            "segments": [{k: s[k] for k in _SEGMENT_FIELDS if k in s} for s in result["segments"]],
            "timings": timings,
            "outputs": written,
        }

    return transcribe_file
