"""Moved to :mod:`whisper_ane.model.decoder`; this old path keeps working for code that
imports it (the layer map is at the top of whisper-ane's README)."""

from whisper_ane.model.decoder import (  # noqa: F401 (re-exported)
    TextCrossAttentionKV,
    TextDecoderANE,
    TextDecoderBlockANE,
)
