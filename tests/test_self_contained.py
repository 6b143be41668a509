"""A fresh clone runs everything: nothing in the repository reaches outside it for data."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from whisper_ane.speech import CLIPS, SPEECH_DIR, speech_paths

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = ".." + "/shared"  # spelled in two parts so this file does not match itself
SKIPPED_DIRS = {".git", ".nox", ".venv", "node_modules", "__pycache__"}


def _repository_files() -> list[Path]:
    """Tracked and untracked-but-not-ignored files (all files when git is unavailable)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        return [ROOT / name for name in listed if (ROOT / name).is_file()]
    except (OSError, subprocess.CalledProcessError):
        return [
            p
            for p in ROOT.rglob("*")
            if p.is_file() and not SKIPPED_DIRS & set(p.relative_to(ROOT).parts)
        ]


def test_no_file_refers_to_a_folder_beside_the_repository():
    offenders = [
        str(path.relative_to(ROOT))
        for path in _repository_files()
        if OUTSIDE.encode() in path.read_bytes()
    ]
    assert offenders == []


def test_the_speech_clips_ship_with_their_provenance():
    assert [p.name for p in speech_paths()] == list(CLIPS)
    readme = (SPEECH_DIR / "README.md").read_text()
    for path in speech_paths():
        assert path.name in readme
        assert hashlib.sha256(path.read_bytes()).hexdigest() in readme  # the shipped bytes


UPSTREAM_TEST = ROOT / "tests" / "upstream_whisper" / "test_transcribe.py"
UPSTREAM_SHA256 = "39b1b2318bd29e16c5d64954bbe70fa560db4eeedd96aaab0f9cfbcce74acd6b"
"""openai-whisper v20250625's tests/test_transcribe.py, byte for byte."""


def test_the_vendored_upstream_test_is_unmodified():
    assert hashlib.sha256(UPSTREAM_TEST.read_bytes()).hexdigest() == UPSTREAM_SHA256
    assert (UPSTREAM_TEST.parent / "jfk.flac").resolve() == speech_paths()[0]
