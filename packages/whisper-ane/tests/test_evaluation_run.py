"""``whisper_ane.evaluation.evaluate`` on real tiny.en weights and two phrases of the shipped
speech: bad input is skipped and counted, a rerun computes nothing, ``jobs=2`` gives the
results of ``jobs=1``."""

from __future__ import annotations

import json

import pytest

from whisper_ane.architecture import WhisperArchitecture
from whisper_ane.evaluation import evaluate, read_folder, select
from whisper_ane.evaluation import runner as runner_module
from whisper_ane.evaluation.samples import write_jfk_phrases


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """Two phrases, an audio file ffmpeg cannot decode (with a transcript) and an audio
    file without a transcript."""
    root = tmp_path_factory.mktemp("phrases")
    write_jfk_phrases(root, count=2)
    (root / "broken.wav").write_bytes(b"RIFF....WAVE but not really audio")
    (root / "broken.txt").write_text("this will never be heard\n")
    (root / "unlabelled.g722").write_bytes((root / "and-so.g722").read_bytes())
    return root


def run(dataset_dir, tiny_en_dir, out, **settings):
    notes = []
    report = evaluate(
        WhisperArchitecture(),
        select(read_folder(dataset_dir, "en")),
        settings.pop("variants", []),
        output_dir=out,
        size="tiny.en",
        checkpoint=str(tiny_en_dir),
        note=notes.append,
        **settings,
    )
    return report, notes


@pytest.fixture(scope="module")
def first_run(dataset_dir, tiny_en_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    report, notes = run(dataset_dir, tiny_en_dir, out)
    return out, report, notes


def test_bad_input_is_one_line_each_and_the_run_goes_on(first_run, dataset_dir):
    out, report, notes = first_run
    (stock,) = report["variants"]
    assert stock["utterances"] == 2 and stock["skipped"] == 2
    assert len(notes) == 2 and all("\n" not in note for note in notes)
    broken, unlabelled = sorted(notes)
    assert str(dataset_dir / "broken.wav") in broken and "ffmpeg cannot decode" in broken
    assert str(dataset_dir / "unlabelled.g722") in unlabelled and "no transcript" in unlabelled
    texts = {u["id"]: u["hypotheses"]["stock"]["normalized"] for u in report["utterances"]}
    assert texts["ask-not.g722"] == "ask not what your country can do for you"
    assert stock["wer_percent"] == pytest.approx(100 * stock["errors"] / stock["reference_words"])
    saved = json.loads((out / "eval.json").read_text())
    assert saved["variants"][0]["wer_percent"] == stock["wer_percent"]
    assert (out / "eval.md").read_text().startswith("# WER on ")
    assert (out / "wer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_rerun_takes_every_result_from_the_cache(
    first_run, dataset_dir, tiny_en_dir, monkeypatch
):
    out, report, _ = first_run
    lines = (out / "cache" / "stock.jsonl").read_text().splitlines()

    def refuse(*args, **kwargs):
        raise AssertionError("a cached utterance was transcribed again")

    monkeypatch.setattr(runner_module, "build", refuse)
    again, _ = run(dataset_dir, tiny_en_dir, out)
    assert again["utterances"] == report["utterances"]
    assert (out / "cache" / "stock.jsonl").read_text().splitlines() == lines


def test_two_worker_processes_give_the_results_of_one(
    first_run, dataset_dir, tiny_en_dir, tmp_path
):
    _, report, _ = first_run
    parallel, _ = run(dataset_dir, tiny_en_dir, tmp_path, jobs=2)
    assert parallel["jobs"] == 2
    for one, two in zip(report["utterances"], parallel["utterances"], strict=True):
        assert one["id"] == two["id"]
        assert one["hypotheses"]["stock"]["text"] == two["hypotheses"]["stock"]["text"]
