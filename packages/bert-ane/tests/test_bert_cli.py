"""The `ane` commands drive the bert plugin through click's CliRunner in-process (the same
commands driving whisper and bert together are in the repository's tests/)."""

from __future__ import annotations

import json

import pytest
from ane_bench.cli import cli
from click.testing import CliRunner


@pytest.fixture
def runner():
    return CliRunner()


def invoke(runner, *args):
    return runner.invoke(cli, [str(a) for a in args])


def test_list_shows_bert_with_its_build_option(runner):
    result = invoke(runner, "list", "--json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    archs = {arch["name"]: arch for arch in listing["architectures"]}
    assert archs["bert"]["components"] == ["encoder", "embedding"]
    assert archs["bert"]["sizes"] == []
    assert archs["bert"]["build_options"][0]["flag"] == "--seq-len"
    assert archs["bert"]["build_options"][0]["default"] == 128
    assert archs["bert"]["build_options"][1]["flag"] == "--token-input"
    assert archs["bert"]["build_options"][1]["default"] == "embeddings"
    text = invoke(runner, "list")
    assert "--seq-len (default 128)" in text.output and "(from the checkpoint)" in text.output


def test_export_all_components_without_size(runner, random_checkpoints, tmp_path):
    result = invoke(
        runner,
        "export",
        "bert",
        "--checkpoint",
        random_checkpoints["distilbert"],
        "--seq-len",
        "16",
        "-o",
        tmp_path,
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    for name in ("bert-encoder-ane-fp16.mlpackage", "bert-embedding-ane-fp16.mlpackage"):
        assert (tmp_path / name).is_dir()
        assert f"{tmp_path / name}" in result.output
    assert result.output.count(", 0 cast)") == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "bert needs --checkpoint DIR"),
        (["--size", "base", "--checkpoint", "."], "not --size base"),
        (["--seq-len", "0"], "--seq-len 0 is outside 1..160"),
        (["--seq-len", "long"], "bert --seq-len got 'long', which is not of type int"),
        (["--depth", "2"], "bert has no option --depth"),
        (["--token-input", "text"], "bert --token-input got 'text'. Use one of: embeddings, ids"),
    ],
)
def test_bad_export_input_is_one_line_and_exit_2(
    runner, random_checkpoints, tmp_path, args, message
):
    if "--checkpoint" not in args and message != "bert needs --checkpoint DIR":
        args = [*args, "--checkpoint", random_checkpoints["bert"]]
    result = invoke(runner, "export", "bert", *args, "-o", tmp_path, "--quiet")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_parity_passes_for_both_precisions(runner, random_checkpoints, tmp_path):
    report = tmp_path / "parity.json"
    result = invoke(
        runner,
        "parity",
        "bert",
        "--checkpoint",
        random_checkpoints["roberta"],
        "--component",
        "encoder",
        "--seq-len",
        "20",
        "--json",
        report,
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(report.read_text())["rows"]
    seen = {(r["component"], r["model"], r["precision"]) for r in rows}
    assert seen == {
        ("encoder", "ane-pytorch", "fp32"),
        ("encoder", "package-mil", "fp32"),
        ("encoder", "package-mil", "fp16"),
    }
    assert all(r["passed"] for r in rows)


def test_parity_with_token_ids_input_passes(runner, random_checkpoints, tmp_path):
    """--token-input ids: every model (stock, ANE, packages) takes the ids themselves."""
    report = tmp_path / "parity.json"
    result = invoke(
        runner,
        "parity",
        "bert",
        "--checkpoint",
        random_checkpoints["bert"],
        "--component",
        "embedding",
        "--seq-len",
        "16",
        "--token-input",
        "ids",
        "--json",
        report,
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(report.read_text())["rows"]
    assert len(rows) == 3 and all(r["passed"] for r in rows)
    assert all(r["psnr_db"] is None or r["psnr_db"] > 35 for r in rows)


def test_parity_tokenizes_input_text_files(runner, minilm_path, tmp_path):
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("A cat sleeps on the sofa.\n\nThe train leaves at noon.\n")
    result = invoke(
        runner,
        "parity",
        "bert",
        "--checkpoint",
        minilm_path,
        "--component",
        "embedding",
        "--precision",
        "fp32",
        "--seq-len",
        "16",
        "--input",
        sentences,
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    assert "sentences.txt:1" in result.output and "sentences.txt:3" in result.output
