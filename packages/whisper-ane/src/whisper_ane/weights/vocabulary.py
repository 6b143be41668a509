"""openai-whisper's tokenizer for a model's vocabulary, and the tokens its decoding suppresses.

Why here, at the bottom: the vocabulary size is part of the weights (51864 tokens:
English-only; 51865: multilingual; 51866: large-v3 and turbo, one more language), and both
the export layer (the special token ids a WhisperKit folder's ``generation_config.json``
names) and the runtime (the prompt of a decoding step) need the tokenizer that goes with it.
"""

from __future__ import annotations

from types import SimpleNamespace

import whisper.decoding
import whisper.tokenizer

ENGLISH_ONLY_VOCAB = 51864
"""``n_vocab`` of the ``.en`` models; anything larger is multilingual."""


def is_multilingual(n_vocab: int) -> bool:
    """As ``whisper.model.Whisper.is_multilingual``, from the vocabulary size."""
    return n_vocab > ENGLISH_ONLY_VOCAB


def num_languages(n_vocab: int) -> int:
    """As ``whisper.model.Whisper.num_languages`` (99, or 100 for large-v3)."""
    return n_vocab - 51765 - int(is_multilingual(n_vocab))


def tokenizer_for(
    n_vocab: int, *, language: str | None = None, task: str = "transcribe"
) -> whisper.tokenizer.Tokenizer:
    """openai-whisper's tokenizer for an ``n_vocab``-token model (``language`` None: no
    language token in its sot sequence; an English-only model ignores ``language`` and
    ``task``)."""
    multilingual = is_multilingual(n_vocab)
    return whisper.tokenizer.get_tokenizer(
        multilingual,
        num_languages=num_languages(n_vocab),
        language=language if multilingual else None,
        task=task if multilingual else None,
    )


def suppressed_tokens(tokenizer: whisper.tokenizer.Tokenizer) -> tuple[int, ...]:
    """What whisper's decoding suppresses by default (``suppress_tokens="-1"``: non-speech
    symbols and the task and control tokens), computed by whisper's own
    ``DecodingTask._get_suppress_tokens``."""
    task = SimpleNamespace(options=whisper.decoding.DecodingOptions(), tokenizer=tokenizer)
    return whisper.decoding.DecodingTask._get_suppress_tokens(task)
