"""Whisper weight sources: openai checkpoints, CTranslate2 directories, download, random.

Use :func:`load_weights` to get a :class:`LoadedWeights` (openai-whisper state dict, its
dimensions and provenance) and :func:`build_whisper` for a stock model holding it.
"""

from whisper_ane.weights.random_init import SIZES
from whisper_ane.weights.source import LoadedWeights, build_whisper, load_weights

__all__ = ["SIZES", "LoadedWeights", "build_whisper", "load_weights"]
