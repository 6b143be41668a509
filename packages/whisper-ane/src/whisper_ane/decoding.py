"""Moved to :mod:`whisper_ane.runtime.decoding`; this old path keeps working for code that
imports it (the layer map is at the top of whisper-ane's README)."""

from whisper_ane.runtime.decoding import (  # noqa: F401 (re-exported)
    DecoderSession,
    DecodeStats,
    StaticCacheInference,
    StaticCacheWhisper,
    load_mel,
    logits_names,
    position_axis,
    transcribe,
)
