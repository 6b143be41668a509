"""Transcripts of audio files decoded with given exported packages: Whisper's
``Architecture.task_outputs``.

Why: ``ane parity --compress`` must say whether compressing the weights changes what a user
reads, not only how far the tensors moved. The packages (encoder, cross_kv, decoder, at one
precision and compression) run in the reference executor through the same decoding loop as
``ane transcribe --backend mil``, so the text is exactly what that command would print.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ane_core.targets import Precision

from whisper_ane.export.components import COMPONENTS
from whisper_ane.runtime.decoding import StaticCacheWhisper, transcribe
from whisper_ane.runtime.package_backend import package_backend
from whisper_ane.weights.source import LoadedWeights


def package_transcripts(
    weights: LoadedWeights,
    packages: Mapping[str, str | Path],
    files: Sequence[str],
    precision: Precision,
    build_options: Mapping[str, Any] | None = None,
) -> dict[str, str] | None:
    """``{file: text}`` (greedy, temperature 0, language detected as ``ane transcribe``
    does); ``None`` when a component's package is missing or there is no file."""
    if not files or any(component not in packages for component in COMPONENTS):
        return None
    paths = {component: Path(packages[component]) for component in COMPONENTS}
    backend = package_backend(
        paths, weights, precision, backend="mil", build_options=dict(build_options or {})
    )
    model = StaticCacheWhisper(backend)
    return {
        str(file): transcribe(model, str(file), temperature=0.0)["text"].strip() for file in files
    }
