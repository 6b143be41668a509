"""The app layouts through the ``ane`` command with the real plugin and real tiny.en weights:
what a user types (``ane export/transcribe whisper --layout ...``), end to end."""

from __future__ import annotations

import json
import os

import torch
import whisper
from ane_bench.cli import cli
from click.testing import CliRunner
from whisper.decoding import DecodingOptions
from whisper_ane.speech import speech_path
from whisper_ane.weights.source import build_whisper, load_weights


def _run(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def test_export_whispercpp_names_the_file_whisper_cpp_loads(tiny_en_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("ane_core.layout_export.can_compile", lambda: False)  # as off a Mac
    result = _run(
        "export", "whisper", "--size", "tiny.en", "--checkpoint", tiny_en_dir,
        "--layout", "whispercpp", "--name", "my-tiny", "-o", tmp_path, "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    package = tmp_path / "ggml-my-tiny-encoder.mlpackage"  # beside ggml-my-tiny[-qX_Y].bin
    assert os.listdir(tmp_path) == [package.name]
    assert "2 cast" in result.output
    assert f"xcrun coremlcompiler compile {package} {tmp_path}" in result.output


def test_transcribe_with_the_whisperkit_folder_as_whisperkit_drives_it(tiny_en_dir, tmp_path):
    """`ane transcribe --layout whisperkit --backend mil` prints stock whisper's text."""
    jfk = speech_path("jfk.flac")
    result = _run(
        "transcribe", "whisper", jfk, "--size", "tiny.en", "--checkpoint", tiny_en_dir,
        "--layout", "whisperkit", "--backend", "mil", "--json",
        env={"ANE_PACKAGES_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (file,) = json.loads(result.output)["files"]
    stock = build_whisper(load_weights("tiny.en", str(tiny_en_dir)))
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(whisper.load_audio(str(jfk))))
    with torch.no_grad():
        expected = whisper.decode(
            stock,
            mel,
            DecodingOptions(language="en", without_timestamps=True, temperature=0, fp16=False),
        )
    assert file["text"] == expected.text.strip()
    assert file["segments"][0]["tokens"] == expected.tokens
    (kept,) = os.listdir(tmp_path)  # the folder is kept for the next run
    assert os.listdir(tmp_path / kept) == ["openai_whisper-tiny.en"]  # named after --size
    assert file["precision"] == "fp16"


def test_whisperkit_refuses_host_embedding_in_one_line_and_writes_nothing(tmp_path):
    """WhisperKit's TextDecoder.swift feeds the token id (``input_ids`` int32), so the
    layout cannot take ``--embedding host``: export says why, transcribe refuses build options
    with a layout, both before any work."""
    export = _run(
        "export", "whisper", "--size", "tiny", "--weights", "random", "--layout", "whisperkit",
        "-o", tmp_path / "out", "--embedding", "host",
    )  # fmt: skip
    transcribe = _run(
        "transcribe", "whisper", "--size", "tiny", "--weights", "random", "--layout",
        "whisperkit", "--backend", "mil", speech_path("jfk.flac"), "--embedding", "host",
    )  # fmt: skip
    for result, message in ((export, "input_ids, int32"), (transcribe, "no build options")):
        assert result.exit_code == 2, result.output
        assert message in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "out").exists()
