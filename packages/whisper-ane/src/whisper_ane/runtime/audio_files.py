"""Check audio files before any weights load: decodable, not empty, not silent.

Why: whisper.load_audio fails deep inside with ffmpeg's whole stderr, and a silent file
"transcribes" to nothing or to a hallucination. Users get one line instead, saying what is
wrong with which file, before seconds of model loading are spent.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import whisper
from ane_core.errors import UsageError

SILENCE_PEAK = 1e-4
"""Peak amplitude (of full scale 1.0) at or under which a file is taken for silence: about
-80 dBFS, under the 16-bit quantisation noise of a real recording."""


def decode_audio(path: str | Path) -> np.ndarray:
    """16 kHz mono float32 samples of ``path``, or a one-line error if ffmpeg cannot read it."""
    try:
        return whisper.load_audio(str(path))
    except RuntimeError as error:
        reason = "ffmpeg could not decode it"
        last = [line for line in str(error).splitlines() if line.strip()]
        if last:
            reason += f" ({last[-1].strip()[:120]})"
        raise UsageError(
            f"audio file {path} is not audio: {reason}.",
            "Pass a sound file ffmpeg can read (wav, flac, mp3, m4a, ...).",
        ) from None
    except FileNotFoundError as error:  # ffmpeg itself is missing
        raise UsageError(
            f"cannot decode {path}: {error.filename or 'ffmpeg'} is not installed.",
            "Install ffmpeg (e.g. apt-get install ffmpeg, brew install ffmpeg).",
        ) from None


def check_audio_files(files: Sequence[str | Path]) -> None:
    """Raise a one-line :class:`UsageError` for the first unusable audio file."""
    for file in files:
        samples = decode_audio(file)
        if samples.size == 0:
            raise UsageError(f"audio file {file} has no samples.", "Pass a recording with sound.")
        if float(np.max(np.abs(samples))) <= SILENCE_PEAK:
            raise UsageError(
                f"audio file {file} is silent (peak under {SILENCE_PEAK:g} of full scale): "
                "nothing to transcribe.",
                "Pass a recording with speech.",
            )
