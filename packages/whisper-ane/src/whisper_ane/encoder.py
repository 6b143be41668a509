"""Moved to :mod:`whisper_ane.model.encoder`; this old path keeps working for code that
imports it (the layer map is at the top of whisper-ane's README)."""

from whisper_ane.model.encoder import (  # noqa: F401 (re-exported)
    MLPANE,
    AudioEncoderANE,
    ResidualAttentionBlockANE,
)
