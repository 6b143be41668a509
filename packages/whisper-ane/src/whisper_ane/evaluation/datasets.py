"""Speech datasets for word error rate: (audio file, reference text) pairs from outside files.

Why readers of their own: an evaluation is only as good as its references, and the files come
from elsewhere (a Debian package, a user's folder, a TSV), so every reader checks what it reads
and turns each problem into one line naming the file: a transcript file that cannot be read
stops the run (:class:`~ane_core.errors.UsageError`), while one utterance without a transcript
or audio is *skipped*, reported, counted, and the rest of the run goes on.

Three layouts:

* the Asterisk prompts layout (Debian's ``asterisk-core-sounds-LANG`` and ``-g722``): audio
  ``SOUNDS/NAME.EXT`` (``NAME`` may hold sub-folders, ``digits/1``) and one transcript file,
  optionally gzipped, of ``NAME: text`` lines (``;`` starts a comment), in the order of that
  file;
* a folder of audio files with a ``.txt`` beside each (same stem), in sorted path order;
* a TSV of ``AUDIO<TAB>TEXT`` lines (paths relative to the TSV's folder; ``#`` starts a
  comment), in line order.

:func:`select` then keeps the utterances a run is sized to: speech only (a reference that is
all ``[bracketed]`` or ``(parenthesised)`` annotation, such as ``[ascending tones]``, is not
speech; bracketed asides inside a text, ``dot [.]``, are dropped), at least ``min_words``
words, the first ``limit`` of them in the dataset's order.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ane_core.errors import UsageError, brief
from ane_core.file_checks.lfs import refuse_lfs_pointer

AUDIO_SUFFIXES = (".g722", ".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".gsm", ".ulaw")
"""Audio files the folder and Asterisk readers look for (ffmpeg decodes them all); for an
Asterisk name the first suffix present wins."""

DEBIAN_ASTERISK = {
    "en": (
        "/usr/share/asterisk/sounds/en",
        "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz",
    ),
    "es": (
        "/usr/share/asterisk/sounds/es",
        "/usr/share/doc/asterisk-core-sounds-es/core-sounds-es.txt.gz",
    ),
}
"""Where Debian's ``asterisk-core-sounds-LANG`` (transcripts) and ``asterisk-core-sounds-LANG-
g722`` (16 kHz G.722 audio, under ``LANG_*_Allison``, which the ``sounds/LANG`` alternative
points to) install, per language: what ``asterisk:LANG`` names."""

ACCENTLESS_ASTERISK = frozenset({"es"})
"""Debian's prompts whose transcripts write most words without their accents ("numero",
"contrasena", "extension" for what is said and what whisper writes as "número"): scored with
diacritics removed from both sides, or each such word would count as an error."""

ASTERISK_PACKAGES = "apt-get install asterisk-core-sounds-{lang} asterisk-core-sounds-{lang}-g722"

_ANNOTATION = re.compile(r"\[[^\]]*\]|\([^)]*\)")


@dataclass(frozen=True)
class Utterance:
    """One recording and what is said in it."""

    id: str
    """Unique within its dataset: the Asterisk name or the path relative to the dataset."""
    audio: Path
    text: str
    """The reference, as the dataset writes it (annotations included)."""


@dataclass(frozen=True)
class Skipped:
    """An utterance that cannot be evaluated, and why (one line naming the file)."""

    id: str
    reason: str


@dataclass(frozen=True)
class Dataset:
    """Utterances, and those skipped while reading, in the dataset's own stable order."""

    name: str
    language: str | None
    """ISO code (``en``, ``es``) when the dataset says it; picks the text normalizer."""
    entries: tuple[Utterance | Skipped, ...]
    excluded: dict[str, int] = field(default_factory=dict)
    """How many utterances :func:`select` left out, by reason (not errors: the run's size)."""
    remove_diacritics: bool = False
    """Score without accents (references written without them; see
    :data:`ACCENTLESS_ASTERISK`)."""

    @property
    def utterances(self) -> tuple[Utterance, ...]:
        return tuple(e for e in self.entries if isinstance(e, Utterance))

    @property
    def skipped(self) -> tuple[Skipped, ...]:
        return tuple(e for e in self.entries if isinstance(e, Skipped))


def spoken_text(text: str) -> str:
    """``text`` without bracketed or parenthesised annotations (``[ascending tones]``,
    ``dot [.]``, ``(beep)``), whitespace collapsed: what a speaker says."""
    return " ".join(_ANNOTATION.sub(" ", text).split())


MAX_TRANSCRIPT_BYTES = 64 << 20
"""A transcript file (decompressed) larger than this is refused: Common Voice's largest TSV
is a few hundred MB only for whole languages, and a gzip bomb must not fill memory."""


def _read_text(path: Path) -> str:
    """A text file (gzip when it starts with gzip's magic), UTF-8; one line if it cannot be
    read, is a Git LFS pointer (a dataset cloned without ``git lfs pull``) or is larger than
    :data:`MAX_TRANSCRIPT_BYTES`."""
    refuse_lfs_pointer(path, UsageError)
    try:
        with open(path, "rb") as raw:
            packed = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if packed else raw
            chunks: list[bytes] = []
            size = 0
            while size <= MAX_TRANSCRIPT_BYTES and (chunk := stream.read(1 << 20)):
                chunks.append(chunk)  # in chunks: one read of the limit allocates it all
                size += len(chunk)
            data = b"".join(chunks)
        if size > MAX_TRANSCRIPT_BYTES:
            raise UsageError(
                f"the transcripts {path} hold more than {MAX_TRANSCRIPT_BYTES >> 20} MiB of text.",
                "Split the dataset.",
            )
        return data.decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as error:
        raise UsageError(
            f"cannot read the transcripts {path} ({brief(error)}).",
            "Pass a readable UTF-8 text file (gzip allowed).",
        ) from None


def _find_audio(root: Path, name: str) -> Path | None:
    for suffix in AUDIO_SUFFIXES:
        candidate = root / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _inside(root: Path, name: str) -> bool:
    """A name that stays inside ``root`` (no absolute path, no ``..``)."""
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts


def _read_index(
    index: Path,
    root: Path,
    *,
    separator: str,
    comment: str,
    form: str,
    locate: Callable[[str], Path | None],
) -> tuple[list[Utterance | Skipped], set[str]]:
    """The entries of a transcript file of ``NAME{separator}text`` lines, in line order, and
    the names it gave; ``locate`` finds a name's audio under ``root`` (``None``: none)."""
    entries: list[Utterance | Skipped] = []
    seen: set[str] = set()
    for number, line in enumerate(_read_text(index).splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(comment):
            continue
        name, found, text = line.partition(separator)
        name, text = name.strip(), " ".join(text.split())
        where = f"line {number} of {index}"
        if not found or not _inside(root, name):
            entries.append(Skipped(name or where, f"{where} is not `{form}`"))
            continue
        if name in seen:
            entries.append(Skipped(name, f"{where} repeats {name!r}"))
            continue
        seen.add(name)
        audio = locate(name)
        if audio is None:
            entries.append(Skipped(name, f"no audio file for {name!r} in {root} ({where})"))
        elif not text:
            entries.append(Skipped(name, f"{audio}: no transcript ({where} is empty)"))
        else:
            entries.append(Utterance(name, audio, text))
    return entries, seen


def read_asterisk(
    sounds: str | Path, transcripts: str | Path, language: str | None = None
) -> Dataset:
    """The Asterisk prompts layout: ``transcripts`` lines ``NAME: text`` for audio
    ``sounds/NAME.EXT``, in the transcript file's order; audio files no line names follow,
    sorted, as skipped (no transcript)."""
    root, index = Path(sounds), Path(transcripts)
    if not root.is_dir():
        raise UsageError(f"the sounds folder {root} does not exist.", "Pass the audio folder.")
    entries, seen = _read_index(
        index,
        root,
        separator=":",
        comment=";",
        form="NAME: text",
        locate=lambda name: _find_audio(root, name),
    )
    for path in sorted(p for p in root.rglob("*") if p.suffix in AUDIO_SUFFIXES):
        name = path.relative_to(root).with_suffix("").as_posix()
        if name not in seen and path.is_file():
            entries.append(Skipped(name, f"{path}: no transcript in {index}"))
    return Dataset(f"asterisk:{root}", language, tuple(entries))


def read_asterisk_debian(language: str) -> Dataset:
    """``asterisk:LANG``: Debian's installed Asterisk prompts in ``language``."""
    if language not in DEBIAN_ASTERISK:
        raise UsageError(
            f"no Debian Asterisk prompts for {language!r}.",
            f"Use one of: {', '.join('asterisk:' + k for k in DEBIAN_ASTERISK)}.",
        )
    sounds, transcripts = (Path(p) for p in DEBIAN_ASTERISK[language])
    if not sounds.is_dir() or not Path(transcripts).is_file():
        raise UsageError(
            f"Debian's Asterisk prompts in {language!r} are not installed ({sounds}, {transcripts}).",
            ASTERISK_PACKAGES.format(lang=language) + ".",
        )
    dataset = read_asterisk(sounds, transcripts, language)
    return replace(
        dataset,
        name=f"asterisk:{language}",
        remove_diacritics=language in ACCENTLESS_ASTERISK,
    )


def read_folder(folder: str | Path, language: str | None = None) -> Dataset:
    """Audio files under ``folder`` (any depth), each with a ``.txt`` of the same stem beside
    it, in sorted path order; an audio file without one, or with one that cannot be read, is
    skipped."""
    root = Path(folder)
    if not root.is_dir():
        raise UsageError(f"the dataset folder {root} does not exist.", "Pass a folder.")
    entries: list[Utterance | Skipped] = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        if not path.is_file():
            continue
        name = path.relative_to(root).as_posix()
        text_file = path.with_suffix(".txt")
        if not text_file.is_file():
            entries.append(Skipped(name, f"{path}: no transcript {text_file.name} beside it"))
            continue
        try:  # the checks of every transcript file: size, Git LFS pointer, UTF-8
            text = " ".join(_read_text(text_file).split())
        except UsageError as error:
            entries.append(Skipped(name, str(error)))
            continue
        if not text:
            entries.append(Skipped(name, f"{path}: its transcript {text_file.name} is empty"))
            continue
        entries.append(Utterance(name, path, text))
    return Dataset(str(root), language, tuple(entries))


def read_tsv(table: str | Path, language: str | None = None) -> Dataset:
    """``AUDIO<TAB>TEXT`` lines (``AUDIO`` relative to the table's folder), in line order."""
    path = Path(table)
    root = path.parent
    entries, _ = _read_index(
        path,
        root,
        separator="\t",
        comment="#",
        form="AUDIO<TAB>TEXT",
        locate=lambda name: root / name if (root / name).is_file() else None,
    )
    return Dataset(str(path), language, tuple(entries))


def open_dataset(
    spec: str, *, language: str | None = None, transcripts: str | Path | None = None
) -> Dataset:
    """``asterisk:LANG`` (Debian's prompts), a folder with ``transcripts`` (the Asterisk
    layout), a folder of audio with ``.txt`` beside each, or a ``.tsv`` file."""
    if spec.startswith("asterisk:"):
        dataset = read_asterisk_debian(spec.partition(":")[2])
        return replace(dataset, language=language or dataset.language)
    path = Path(spec)
    if transcripts is not None:
        return read_asterisk(path, transcripts, language)
    if path.is_dir():
        return read_folder(path, language)
    if path.is_file():
        return read_tsv(path, language)
    raise UsageError(
        f"dataset {spec!r} is neither asterisk:LANG, a folder nor a TSV file.",
        "Pass asterisk:en, a folder of audio with .txt files, or a TSV of AUDIO<TAB>TEXT.",
    )


def select(dataset: Dataset, *, min_words: int = 1, limit: int | None = None) -> Dataset:
    """The entries a run evaluates, in the dataset's order: spoken references (see
    :func:`spoken_text`) of at least ``min_words`` words, up to the ``limit``-th of them
    (skipped entries before it stay, to be reported; those after it are outside the run).
    What is left out is counted in :attr:`Dataset.excluded`."""
    kept: list[Utterance | Skipped] = []
    taken = 0
    excluded = {"not speech": 0, f"under {min_words} words": 0, "past --limit": 0}
    for entry in dataset.entries:
        full = limit is not None and taken >= limit
        if isinstance(entry, Skipped):
            if not full:
                kept.append(entry)
            continue
        words = spoken_text(entry.text).split()
        if not words:
            excluded["not speech"] += 1
        elif len(words) < min_words:
            excluded[f"under {min_words} words"] += 1
        elif full:
            excluded["past --limit"] += 1
        else:
            kept.append(entry)
            taken += 1
    return replace(
        dataset,
        entries=tuple(kept),
        excluded={reason: n for reason, n in excluded.items() if n},
    )
