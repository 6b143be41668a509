"""``whisper_ane.evaluation`` without a model: dataset readers (and their fuzzing), variant
spellings, WER arithmetic, the per-utterance cache."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from ane_core.errors import UsageError
from ane_core.fuzzing import check_damaged_read, damaged_copy, damages
from hypothesis import given
from hypothesis import strategies as st
from whisper.normalizers import BasicTextNormalizer, EnglishTextNormalizer

from whisper_ane.evaluation import (
    Skipped,
    Utterance,
    open_dataset,
    parse_variant,
    read_asterisk,
    read_folder,
    read_tsv,
    select,
)
from whisper_ane.evaluation.cache import ResultCache
from whisper_ane.evaluation.datasets import spoken_text
from whisper_ane.evaluation.wer import WordCounts, normalizer, total, word_counts

ASTERISK_LINES = """\
; Core Asterisk Sounds in English

hello: Hello there, my good friend.
digits/1: one
ascending-2tone: [ascending tones]
letters/dot: dot [.]
empty:
absent: This prompt has no recording at all.
bye: Goodbye, and thank you for calling.
"""


def write_asterisk(root: Path) -> tuple[Path, Path]:
    """An Asterisk layout in ``root``: sounds/ (names with a sub-folder, one audio file no
    line names, one line without audio) and a gzipped transcript file."""
    sounds = root / "sounds"
    for name in ("hello", "digits/1", "ascending-2tone", "letters/dot", "empty", "bye", "extra"):
        path = sounds / f"{name}.g722"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x00" * 64)
    transcripts = root / "core-sounds-en.txt.gz"
    transcripts.write_bytes(gzip.compress(ASTERISK_LINES.encode()))
    return sounds, transcripts


def test_asterisk_reader_keeps_file_order_and_names_each_problem(tmp_path):
    sounds, transcripts = write_asterisk(tmp_path)
    dataset = read_asterisk(sounds, transcripts, "en")
    kinds = [(type(e).__name__, e.id) for e in dataset.entries]
    assert kinds == [
        ("Utterance", "hello"),
        ("Utterance", "digits/1"),
        ("Utterance", "ascending-2tone"),
        ("Utterance", "letters/dot"),
        ("Skipped", "empty"),
        ("Skipped", "absent"),
        ("Utterance", "bye"),
        ("Skipped", "extra"),
    ]
    reasons = {s.id: s.reason for s in dataset.skipped}
    assert str(sounds / "empty.g722") in reasons["empty"] and "no transcript" in reasons["empty"]
    assert "no audio file" in reasons["absent"] and "line 8" in reasons["absent"]
    assert str(sounds / "extra.g722") in reasons["extra"]
    assert all("\n" not in reason for reason in reasons.values())
    assert dataset.utterances[1].audio == sounds / "digits" / "1.g722"


def test_select_drops_annotations_filters_words_and_limits_in_order(tmp_path):
    dataset = read_asterisk(*write_asterisk(tmp_path), "en")
    assert spoken_text("dot [.]") == "dot" and spoken_text("[ascending tones]") == ""
    everything = select(dataset)
    assert [u.id for u in everything.utterances] == ["hello", "digits/1", "letters/dot", "bye"]
    assert everything.excluded == {"not speech": 1}
    long = select(dataset, min_words=4, limit=2)
    assert [u.id for u in long.utterances] == ["hello", "bye"]
    assert long.excluded == {"not speech": 1, "under 4 words": 2}
    # skipped entries up to the limit stay reported, those after it are outside the run
    assert [s.id for s in long.skipped] == ["empty", "absent"]
    first = select(dataset, min_words=4, limit=1)
    assert [u.id for u in first.utterances] == ["hello"] and not first.skipped
    assert first.excluded["past --limit"] == 1
    assert [s.id for s in select(dataset, min_words=4).skipped] == ["empty", "absent", "extra"]


def test_folder_reader_pairs_each_audio_file_with_its_txt(tmp_path):
    (tmp_path / "b").mkdir()
    for name, text in (("b/two.wav", "second one"), ("a.flac", "first\n one "), ("c.wav", None)):
        (tmp_path / name).write_bytes(b"RIFF")
        if text is not None:
            (tmp_path / name).with_suffix(".txt").write_text(text)
    (tmp_path / "d.wav").write_bytes(b"RIFF")
    (tmp_path / "d.txt").write_text("  ")
    dataset = read_folder(tmp_path, "en")
    assert [(u.id, u.text) for u in dataset.utterances] == [
        ("a.flac", "first one"),
        ("b/two.wav", "second one"),
    ]
    assert [s.id for s in dataset.skipped] == ["c.wav", "d.wav"]
    assert "c.txt" in dataset.skipped[0].reason and "empty" in dataset.skipped[1].reason


def test_tsv_reader_resolves_paths_beside_the_table(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "x.wav").write_bytes(b"RIFF")
    (tmp_path / "clips" / "y.wav").write_bytes(b"RIFF")
    table = tmp_path / "set.tsv"
    table.write_text(
        "# audio\ttext\nclips/y.wav\tHello  world\nclips/x.wav\tsecond\n"
        "clips/z.wav\tno file\nno tab here\n../up.wav\toutside\nclips/x.wav\tagain\n"
    )
    dataset = open_dataset(str(table), language="es")
    assert [(u.id, u.text) for u in dataset.utterances] == [
        ("clips/y.wav", "Hello world"),
        ("clips/x.wav", "second"),
    ]
    assert dataset.language == "es"
    assert [s.id for s in dataset.skipped] == [
        "clips/z.wav",
        "no tab here",
        "../up.wav",
        "clips/x.wav",
    ]


def test_open_dataset_refuses_what_it_cannot_read_in_one_line(tmp_path):
    bad = tmp_path / "t.txt.gz"
    bad.write_bytes(b"\x1f\x8b not gzip")
    (tmp_path / "sounds").mkdir()
    for call, where in (
        (lambda: open_dataset(str(tmp_path / "missing")), "missing"),
        (lambda: open_dataset("asterisk:xx"), "'xx'"),
        (lambda: open_dataset(str(tmp_path / "sounds"), transcripts=bad), str(bad)),
        (lambda: read_asterisk(tmp_path / "nowhere", bad), "nowhere"),
    ):
        with pytest.raises(UsageError) as raised:
            call()
        assert where in str(raised.value) and "\n" not in str(raised.value)


def _accept(dataset) -> None:
    """A load that succeeded is consistent: unique ids, real audio files, spoken text."""
    ids = [e.id for e in dataset.entries]
    assert len(set(u.id for u in dataset.utterances)) == len(dataset.utterances), ids
    for utterance in dataset.utterances:
        assert isinstance(utterance, Utterance) and utterance.audio.is_file()
        assert utterance.text.strip()
    for skipped in dataset.skipped:
        assert isinstance(skipped, Skipped) and "\n" not in skipped.reason


@pytest.fixture(scope="module")
def asterisk_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("asterisk")
    write_asterisk(root)
    (root / "set.tsv").write_text("sounds/hello.g722\tHello there\nsounds/bye.g722\tbye\n")
    return root


@given(damage=st.data())
def test_damaged_transcripts_load_or_fail_in_one_line(asterisk_folder, damage):
    sizes = {
        name: (asterisk_folder / name).stat().st_size
        for name in ("core-sounds-en.txt.gz", "set.tsv")
    }
    headers = {name: [(0, min(size, 64))] for name, size in sizes.items()}
    chosen = damage.draw(damages(sizes, headers))
    with damaged_copy(asterisk_folder, chosen) as root:
        if chosen.file == "set.tsv":
            read = lambda: read_tsv(root / "set.tsv")  # noqa: E731
        else:
            read = lambda: read_asterisk(root / "sounds", root / "core-sounds-en.txt.gz")  # noqa: E731
        check_damaged_read(read, chosen, root, file_bytes=sum(sizes.values()), accept=_accept)


@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_any_transcript_text_reads_to_a_consistent_dataset(asterisk_folder, text, tmp_path_factory):
    scratch = tmp_path_factory.mktemp("text")
    transcripts = scratch / "lines.txt"
    transcripts.write_text(text, encoding="utf-8")
    table = asterisk_folder / f"fuzz-{abs(hash(text))}.tsv"
    table.write_text(text, encoding="utf-8")
    try:
        _accept(read_asterisk(asterisk_folder / "sounds", transcripts))
        _accept(read_tsv(table))
    finally:
        table.unlink()


def test_variant_spellings():
    assert parse_variant("mil").label == "mil:fp16:none:native"
    assert parse_variant("torch-ane").label == "torch-ane:fp32:none:native"
    assert parse_variant("mil::palettize4").label == "mil:fp16:palettize4:native"
    assert parse_variant("mil:fp16:none:whisperkit").label == "mil:fp16:none:whisperkit"
    assert parse_variant("stock").is_stock
    for bad, words in (
        ("gpu", "unknown backend"),
        ("mil:fp8", "unknown precision"),
        ("mil:fp16:zip", "unknown --compress"),
        ("torch-ane:fp32:int8", "exported packages"),
        ("mil:fp16:int8:whisperkit", "uncompressed"),
        ("torch-ane:fp32:none:whisperkit", "--backend torch-ane"),
        ("mil:fp16:none:native:x", "more than 4"),
        ("stock:fp16", "takes no fields"),
    ):
        with pytest.raises(UsageError, match=words):
            parse_variant(bad)


def test_wer_sums_edits_over_the_corpus():
    # by hand: "two" -> "too" is 1 substitution, "five" 1 insertion; "eight" 1 deletion
    first = word_counts("one two three four", "one too three four five")
    second = word_counts("a b c d e f g h", "a b c d e f g")
    assert first == WordCounts(hits=3, substitutions=1, insertions=1)
    assert second == WordCounts(hits=7, deletions=1)
    corpus = total([first, second])
    assert corpus.reference_words == 12 and corpus.errors == 3
    assert corpus.wer == pytest.approx(3 / 12)  # not the mean of 2/4 and 1/8
    assert word_counts("a b", "") == WordCounts(deletions=2)
    with pytest.raises(ValueError):
        word_counts("", "a")


def test_whispers_normalizers_by_language():
    assert isinstance(normalizer("en").whisper, EnglishTextNormalizer)
    assert isinstance(normalizer("es").whisper, BasicTextNormalizer)
    assert isinstance(normalizer(None).whisper, BasicTextNormalizer)
    assert normalizer("en")("Mr. Smith, you're late!") == "mister smith you are late"
    assert normalizer("es")("Su número.") == "su número"
    # Debian's Spanish prompts write "numero": scored without accents on both sides
    assert normalizer("es", remove_diacritics=True)("Su número.") == "su numero"


def test_cache_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "v.jsonl"
    cache = ResultCache(path)
    cache.add({"key": "a", "text": "one"})
    with open(path, "a") as handle:
        handle.write('{"key": "b", "te')  # the run was killed mid-write
    reopened = ResultCache(path)
    assert reopened.get("a") == {"key": "a", "text": "one"} and reopened.get("b") is None
    reopened.add({"key": "c", "text": "three"})
    again = ResultCache(path)
    assert again.get("a") and again.get("c") == {"key": "c", "text": "three"}


def test_a_dataset_with_nothing_to_evaluate_is_one_line(tmp_path):
    from whisper_ane.architecture import WhisperArchitecture
    from whisper_ane.evaluation import evaluate

    (tmp_path / "a.wav").write_bytes(b"not audio")
    (tmp_path / "a.txt").write_text("hello there")
    notes = []
    with pytest.raises(UsageError, match="no utterance of .* is left to evaluate"):
        evaluate(
            WhisperArchitecture(),
            read_folder(tmp_path, "en"),
            [],
            output_dir=tmp_path / "out",
            size="tiny",
            checkpoint="random",
            note=notes.append,
        )
    assert len(notes) == 1 and str(tmp_path / "a.wav") in notes[0]
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("folder")
    for name, text in (("one", "the first thing said"), ("two", "and the second one")):
        (root / f"{name}.wav").write_bytes(b"RIFF")
        (root / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    return root


@given(damage=st.data())
def test_a_damaged_txt_is_read_or_skipped_naming_it(labelled_folder, damage):
    names = ("one.txt", "two.txt")
    sizes = {name: (labelled_folder / name).stat().st_size for name in names}
    chosen = damage.draw(damages(sizes, {name: [(0, size)] for name, size in sizes.items()}))
    with damaged_copy(labelled_folder, chosen) as root:
        dataset = read_folder(root)
        _accept(dataset)
        damaged = Path(chosen.file).with_suffix(".wav").name
        entry = next(e for e in dataset.entries if e.id == damaged)
        if isinstance(entry, Skipped):
            assert str(root / chosen.file) in entry.reason or "empty" in entry.reason
            if chosen.kind == "lfs":
                assert "Git LFS pointer" in entry.reason
        else:
            assert chosen.kind != "lfs", "a Git LFS pointer was read as a transcript"
            raw = (root / chosen.file).read_bytes().decode("utf-8")
            assert entry.text == " ".join(raw.split())
        assert len(dataset.entries) == 2
