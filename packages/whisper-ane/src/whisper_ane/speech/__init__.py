"""Real speech clips shipped with whisper-ane, for examples, tests and parity checks.

Why inside the package: the checks that matter most (encoder and decoder parity on real
speech, transcripts against stock whisper) need real recordings, and a fresh clone or a
plain ``pip install`` must be able to run them with nothing beside it. The clips are small
(1.5 MB together) and their provenance and reference transcripts are in ``README.md`` here.
This module is the one place that resolves their paths: the noxfile, every test suite and
the README examples (``python -m whisper_ane.speech jfk.flac``) go through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ane_core.errors import UsageError

SPEECH_DIR = Path(__file__).resolve().parent
"""Where the clips live (inside the installed package)."""


@dataclass(frozen=True)
class SpeechClip:
    """One shipped recording and what stock whisper should hear in it."""

    name: str
    language: str
    transcript: str
    """The reference transcript (stock whisper base, greedy, temperature 0, fp32)."""

    @property
    def path(self) -> Path:
        return SPEECH_DIR / self.name


CLIPS: dict[str, SpeechClip] = {
    clip.name: clip
    for clip in (
        SpeechClip(
            "jfk.flac",
            "en",
            "And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.",
        ),
        SpeechClip(
            "es_test_clip.wav",
            "es",
            "Esta es una grabación de LibriVox. Todas las grabaciones de LibriVox son del "
            "dominio público.",
        ),
        SpeechClip("ja_test_clip.wav", "ja", "東京は晴れでした。"),
    )
}
"""Every shipped clip by file name, in a fixed order (English, Spanish, Japanese)."""


def speech_path(name: str) -> Path:
    """The path of the shipped clip ``name`` (``jfk.flac``; the suffix may be left out).

    A missing file is an error, never a reason to skip: the clips are part of the package.
    """
    clip = CLIPS.get(name) or next((c for c in CLIPS.values() if Path(c.name).stem == name), None)
    if clip is None:
        raise UsageError(f"no shipped speech clip {name!r}.", f"Use one of: {', '.join(CLIPS)}.")
    if not clip.path.is_file():
        raise UsageError(
            f"the shipped speech clip {clip.path} is missing.",
            "Reinstall whisper-ane (or restore the file from the repository).",
        )
    return clip.path


def speech_paths() -> list[Path]:
    """Every shipped clip's path, in :data:`CLIPS` order (each checked as :func:`speech_path`)."""
    return [speech_path(name) for name in CLIPS]
