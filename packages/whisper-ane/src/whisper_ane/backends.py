"""Moved to :mod:`whisper_ane.runtime.backends`; this old path keeps working for code that
imports it (the layer map is at the top of whisper-ane's README)."""

from whisper_ane.runtime.backends import (  # noqa: F401 (re-exported)
    COMPONENTS,
    TORCH_BACKENDS,
    ComponentRunner,
    TorchRunner,
    WhisperBackend,
    torch_backend,
)
