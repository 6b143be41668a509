"""``ane transcribe whisper``: the real plugin, real weights and the shipped speech."""

from __future__ import annotations

import json

from ane_bench.cli import cli
from click.testing import CliRunner
from whisper_ane.speech import speech_path


def test_whisper_tiny_en_transcribes_jfk(tiny_en_dir):
    args = ["transcribe", "whisper", str(speech_path("jfk.flac")), "--size", "tiny.en", "--json"]
    result = CliRunner().invoke(cli, [*args, "--checkpoint", str(tiny_en_dir)])
    assert result.exit_code == 0, result.output
    (file,) = json.loads(result.output)["files"]
    assert "ask not what your country can do for you" in file["text"].lower()
    assert file["language"] == "en" and file["segments"][0]["start"] == 0.0
    assert file["timings"]["decoder_steps"] > len(file["segments"][0]["tokens"])
