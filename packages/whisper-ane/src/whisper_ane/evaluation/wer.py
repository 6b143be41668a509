"""Word error rate as Whisper's authors measure it: whisper's own text normalizers, then
``jiwer``'s word alignment.

Why whisper's normalizers: WER on raw text counts casing, punctuation and spellings ("Mr." /
"mister", "10" / "ten") as errors; openai-whisper ships the normalizers its paper used
(``whisper.normalizers.EnglishTextNormalizer`` for English, ``BasicTextNormalizer``
otherwise), so figures compare with published ones (whisperkittools uses them too).
Corpus WER sums the edit counts over utterances: ``(S + D + I) / (S + D + H)``, the number of
reference words in the denominator, not a mean of per-utterance rates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache

import jiwer
from whisper.normalizers import BasicTextNormalizer, EnglishTextNormalizer


@dataclass(frozen=True)
class Normalizer:
    """One of whisper's normalizers, its words joined by one space (whisper's leave a space
    where a final stop was, so texts compare equal only once it is gone)."""

    whisper: Callable[[str], str]
    remove_diacritics: bool = False

    def __call__(self, text: str) -> str:
        return " ".join(self.whisper(text).split())

    @property
    def name(self) -> str:
        """As reports give it."""
        name = type(self.whisper).__name__
        return f"{name}(remove_diacritics=True)" if self.remove_diacritics else name


@cache
def normalizer(language: str | None, remove_diacritics: bool = False) -> Normalizer:
    """``EnglishTextNormalizer`` for ``en`` (spellings, numbers, contractions; it removes
    diacritics itself), else ``BasicTextNormalizer`` (lower case, no punctuation or symbols;
    accents kept unless ``remove_diacritics``)."""
    if language == "en":
        return Normalizer(EnglishTextNormalizer())
    return Normalizer(BasicTextNormalizer(remove_diacritics=remove_diacritics), remove_diacritics)


@dataclass(frozen=True)
class WordCounts:
    """Edit counts of hypotheses against references, in words."""

    hits: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0

    @property
    def reference_words(self) -> int:
        return self.hits + self.substitutions + self.deletions

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """Errors per reference word (0 when there are no reference words)."""
        return self.errors / self.reference_words if self.reference_words else 0.0

    def __add__(self, other: WordCounts) -> WordCounts:
        return WordCounts(
            self.hits + other.hits,
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
        )

    def as_dict(self) -> dict[str, float | int]:
        return {
            "wer": self.wer,
            "substitutions": self.substitutions,
            "deletions": self.deletions,
            "insertions": self.insertions,
            "errors": self.errors,
            "hits": self.hits,
            "reference_words": self.reference_words,
        }


def word_counts(reference: str, hypothesis: str) -> WordCounts:
    """Edit counts of one normalized ``hypothesis`` against its normalized ``reference``
    (which must hold a word; an empty hypothesis deletes every reference word)."""
    if not reference.split():
        raise ValueError("a reference needs at least one word")
    if not hypothesis.split():
        return WordCounts(deletions=len(reference.split()))
    out = jiwer.process_words(reference, hypothesis)
    return WordCounts(out.hits, out.substitutions, out.deletions, out.insertions)


def total(counts: Iterable[WordCounts]) -> WordCounts:
    """The corpus counts: the sum over utterances."""
    result = WordCounts()
    for item in counts:
        result = result + item
    return result
