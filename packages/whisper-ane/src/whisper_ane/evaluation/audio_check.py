"""Which utterances' audio can be evaluated, read once before any model runs.

Why first: an unreadable or undecodable file must be one line and a skip, not a crash in the
middle of the third variant; and the audio's SHA-256 (part of every cache key) and duration
(the real-time factor's denominator) come from the same read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import whisper
from ane_core.errors import UsageError, brief
from ane_core.file_checks.digest import file_sha256
from ane_core.file_checks.lfs import lfs_pointer_error, read_lfs_pointer

from whisper_ane.evaluation.datasets import Skipped, Utterance

SAMPLE_RATE = whisper.audio.SAMPLE_RATE


@dataclass(frozen=True)
class CheckedAudio:
    """An utterance whose audio decodes to sound."""

    utterance: Utterance
    sha256: str
    seconds: float


def check_one(utterance: Utterance) -> CheckedAudio | Skipped:
    """Hash and decode one file (ffmpeg through ``whisper.load_audio``, as transcription
    will): the audio, or why it is skipped."""
    path = Path(utterance.audio)
    pointer = read_lfs_pointer(path)
    if pointer is not None:
        return Skipped(utterance.id, str(lfs_pointer_error(path, pointer, UsageError)))
    try:
        digest = file_sha256(path)
    except OSError as error:
        return Skipped(utterance.id, f"{path}: unreadable audio ({error.strerror or error})")
    try:
        samples = whisper.load_audio(str(path))
    except (RuntimeError, OSError) as error:
        lines = [line for line in str(error).splitlines() if line.strip()]
        # ffmpeg's verdict is its last line (the lines above are its banner)
        reason = " ".join(lines[-1].split())[:160] if lines else brief(error)
        return Skipped(utterance.id, f"{path}: ffmpeg cannot decode it ({reason})")
    if samples.size == 0:
        return Skipped(utterance.id, f"{path}: no audio samples")
    return CheckedAudio(utterance, digest, samples.size / SAMPLE_RATE)


def check_audio(
    utterances: Sequence[Utterance],
    *,
    jobs: int = 1,
    on_done: Callable[[int], None] | None = None,
) -> tuple[list[CheckedAudio], list[Skipped]]:
    """Every utterance checked (``jobs`` ffmpeg processes at once), in their order."""
    good: list[CheckedAudio] = []
    skipped: list[Skipped] = []
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for done, outcome in enumerate(pool.map(check_one, utterances), 1):
            (good if isinstance(outcome, CheckedAudio) else skipped).append(outcome)
            if on_done is not None:
                on_done(done)
    return good, skipped
