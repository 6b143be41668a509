"""``ane eval whisper``: the real plugin, real tiny.en weights and two phrases of the shipped
speech; bad spellings are one line before anything loads."""

from __future__ import annotations

import json

import pytest
from ane_bench.cli import cli
from click.testing import CliRunner
from whisper_ane.evaluation.samples import write_jfk_phrases


def test_torch_ane_fp32_scores_exactly_as_stock_whisper(tiny_en_dir, tmp_path):
    data, out = tmp_path / "phrases", tmp_path / "out"
    write_jfk_phrases(data, count=2)
    args = ["eval", "whisper", str(data), "--size", "tiny.en", "--checkpoint", str(tiny_en_dir)]
    args += ["--language", "en", "--variant", "torch-ane:fp32", "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "torch-ane:fp32:none:native" in result.output and f"json: {out}" in result.output
    report = json.loads((out / "eval.json").read_text())
    stock, ours = report["variants"]
    assert (stock["variant"], stock["utterances"], stock["skipped"]) == ("stock", 2, 0)
    assert ours["wer_percent"] == stock["wer_percent"]
    for key in ("substitutions", "deletions", "insertions", "reference_words"):
        assert ours[key] == stock[key]
    assert ours["differ_from_stock"] == 0 and ours["differences"] == []
    assert report["normalizer"] == "EnglishTextNormalizer"


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--variant", "torch-ane:fp32:int8"], "compression applies to exported packages"),
        (["--variant", "gpu"], "unknown backend 'gpu'"),
        (["--transcripts", "/no/such.txt.gz"], "/no/such.txt.gz"),
    ],
)
def test_bad_settings_are_one_line(tmp_path, words, message):
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "a.txt").write_text("hello")
    args = ["eval", "whisper", str(tmp_path), "--weights", "random", "--size", "tiny"]
    result = CliRunner().invoke(cli, [*args, *words, "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
