"""A small dataset cut from the shipped speech: the jfk clip's three phrases as 16 kHz G.722
files (the codec of Debian's Asterisk prompts) with a ``.txt`` beside each.

Why: the tests and a first ``ane eval`` try need real speech in the dataset layouts without
Debian's packages; cutting it from :mod:`whisper_ane.speech` with ffmpeg (which decoding needs
anyway) ships no new audio. Phrase boundaries are silences of the clip, so each phrase is
whole.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ane_core.errors import UsageError

from whisper_ane.speech import speech_path

JFK_PHRASES: tuple[tuple[str, float, float, str], ...] = (
    ("and-so", 0.0, 3.2, "And so, my fellow Americans,"),
    ("ask-not", 3.2, 4.6, "ask not what your country can do for you,"),
    ("ask-what", 7.8, 3.2, "ask what you can do for your country."),
)
"""(name, start s, length s, what is said) of each phrase of ``jfk.flac``."""


def write_jfk_phrases(directory: str | Path, count: int = len(JFK_PHRASES)) -> list[Path]:
    """The first ``count`` phrases as ``NAME.g722`` and ``NAME.txt`` in ``directory`` (the
    folder layout); the audio paths."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    source = speech_path("jfk.flac")
    written = []
    for name, start, length, text in JFK_PHRASES[:count]:
        audio = folder / f"{name}.g722"
        command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-ss", str(start)]
        command += ["-t", str(length), "-i", str(source), "-ar", "16000", "-ac", "1"]
        try:
            subprocess.run([*command, "-c:a", "g722", str(audio)], check=True)
        except (OSError, subprocess.CalledProcessError) as error:
            raise UsageError(
                f"ffmpeg could not cut {source} into {audio} ({error}).", "Install ffmpeg."
            ) from None
        (folder / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
        written.append(audio)
    return written
