"""Whisper as an ane architecture plugin, and ``whisper_ane.load_model``: the ANE models
behind openai-whisper's Python interface (see :mod:`whisper_ane.api`)."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``whisper_ane.load_model`` without importing torch and whisper on ``import whisper_ane``
    (the plugin loader imports this package for every ``ane`` command)."""
    if name == "load_model":
        from whisper_ane.api import load_model

        return load_model
    raise AttributeError(f"module 'whisper_ane' has no attribute {name!r}")
