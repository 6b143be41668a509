"""``whisper_ane.load_model``: the ANE models behind openai-whisper's Python interface.

Why: people who transcribe with openai-whisper write ``whisper.load_model(...)`` and then
``model.transcribe(audio, word_timestamps=True, ...)``. Switching to the Neural Engine export
should be that one line changed::

    import whisper_ane
    model = whisper_ane.load_model("base", backend="mil")      # was: whisper.load_model("base")
    result = model.transcribe("jfk.flac", word_timestamps=True)

The model returned is a :class:`~whisper_ane.runtime.decoding.StaticCacheWhisper`:
``transcribe`` takes ``whisper.transcribe``'s options with their defaults (temperature
fallback, thresholds, prompts, word timestamps, ``clip_timestamps``, hallucination checks;
no beam search), and ``detect_language``, ``decode``, ``is_multilingual``,
``num_languages``, ``dims`` and ``.to(device)`` (which returns the model itself) work as on
whisper's model. It sits at the top of whisper-ane's layers with the plugin: it needs the
architecture to export packages.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ane_core.errors import UsageError
from ane_core.targets import Precision, parse_precision

from whisper_ane.architecture import WhisperArchitecture
from whisper_ane.export.alignment_heads import parse_alignment_heads
from whisper_ane.runtime.decoding import StaticCacheWhisper
from whisper_ane.runtime.transcription import BACKENDS, check_backend, static_cache_model
from whisper_ane.weights import SIZES
from whisper_ane.weights.source import load_weights


def load_model(
    name: str | Path,
    device: Any = None,
    download_root: str | None = None,
    in_memory: bool = False,
    *,
    backend: str = "torch-ane",
    precision: str | Precision | None = None,
    alignment_heads: str | Sequence[tuple[int, int]] | None = None,
) -> StaticCacheWhisper:
    """Load Whisper ``name`` on one of our backends, shaped like ``whisper.load_model``.

    ``name``: a size (``tiny.en`` ... ``large-v3-turbo``, ``turbo``), fetched through
    openai-whisper's download cache (``download_root``) with its SHA-256 check, or a path to
    any weight source we read: an openai ``.pt``, a CTranslate2 directory, a Hugging Face
    Whisper directory. ``backend``: one of :data:`~whisper_ane.runtime.transcription.BACKENDS`
    (``torch-ane``, ``torch-stock``, ``mil``, ``coreml``, ``mil-stateful``,
    ``coreml-stateful``); the package backends export the packages first, kept in
    ``$ANE_PACKAGES_DIR`` as ``ane transcribe`` keeps them. ``precision``: ``fp16``/``fp32``
    (default: fp16 for packages, fp32 for the PyTorch modules). ``alignment_heads``: override
    the heads word timestamps read (``"none"``, ``"L:H,..."`` or pairs; default: the
    source's, whisper's table, or the last half of the layers). ``device`` and ``in_memory``
    are accepted for whisper's signature; the backend decides where the model runs.
    """
    check_backend(backend)
    parsed = parse_precision(precision) if isinstance(precision, str) else precision
    weights = load_weights(*_size_and_source(name), download_root=download_root)
    options: dict[str, Any] = {}
    if alignment_heads is not None:
        options["alignment_heads"] = (
            parse_alignment_heads(alignment_heads)
            if isinstance(alignment_heads, str)
            else tuple(alignment_heads)
        )
    return static_cache_model(
        WhisperArchitecture(), weights, backend=backend, precision=parsed, build_options=options
    )


def _size_and_source(name: str | Path) -> tuple[str | None, str | None]:
    """``(size, None)`` for a size name (the download), ``(None, path)`` for a weight source."""
    text = str(name)
    if text in SIZES:
        return text, None
    if Path(text).expanduser().exists():
        return None, text
    raise UsageError(
        f"{text!r} is neither a Whisper size nor an existing path.",
        f"Pass a size ({', '.join(SIZES)}) or the path of an openai .pt checkpoint, a "
        "CTranslate2 directory or a Hugging Face Whisper directory.",
    )


__all__ = ["BACKENDS", "load_model"]
