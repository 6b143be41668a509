"""Whisper as an ane architecture plugin."""

__version__ = "0.1.0"
