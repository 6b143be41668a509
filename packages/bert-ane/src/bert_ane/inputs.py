"""Model inputs at the fixed sequence length: the tokenizer's, and deterministic examples.

Why fixed: a Core ML program compiled for the ANE has static shapes (see the README), so
every sentence is padded (or truncated) to ``seq_len`` tokens and the attention mask says
which positions are real. Padding goes on the right, as Hugging Face tokenizers do by default
and as the RoBERTa position handling assumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from bert_ane.config import EncoderShape


def tokenize(
    directory: str | Path, sentences: Sequence[str], seq_len: int
) -> tuple[Tensor, Tensor]:
    """``(input_ids int32 (N, seq_len), attention_mask float32 (N, seq_len))`` for
    ``sentences``, with the checkpoint directory's own tokenizer (offline)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    batch = tokenizer(
        list(sentences),
        padding="max_length",
        truncation=True,
        max_length=seq_len,
        return_tensors="pt",
    )
    return batch["input_ids"].to(torch.int32), batch["attention_mask"].to(torch.float32)


def example_inputs(shape: EncoderShape, seq_len: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Deterministic ``(input_ids, attention_mask)`` for tracing: batch 1, the first three
    quarters real tokens (ids drawn with ``seed``), the rest padding."""
    generator = torch.Generator().manual_seed(seed)
    low = min(1000, shape.vocab_size // 2)
    ids = torch.randint(low, shape.vocab_size, (1, seq_len), generator=generator, dtype=torch.int32)
    real = max(1, (3 * seq_len) // 4)
    mask = torch.zeros(1, seq_len)
    mask[:, :real] = 1.0
    pad = shape.padding_position if shape.padding_position is not None else 0
    ids[:, real:] = pad
    return ids, mask


SAMPLE_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Sentence embeddings let a phone search notes by meaning rather than by keywords.",
    "Apple's Neural Engine runs transformer layers fastest in a channels-first layout.",
)
"""Real sentences for parity checks when the user gives none."""

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json")


def has_tokenizer(directory: str | Path) -> bool:
    """Whether the checkpoint directory ships a tokenizer (test checkpoints often do not)."""
    return any((Path(directory) / name).is_file() for name in TOKENIZER_FILES)


def read_sentences(path: str | Path) -> list[tuple[str, str]]:
    """``(name, sentence)`` for every non-empty line of a text file, named ``file:line``."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [
        (f"{Path(path).name}:{number}", line.strip())
        for number, line in enumerate(lines, start=1)
        if line.strip()
    ]
