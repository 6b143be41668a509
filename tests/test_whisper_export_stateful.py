"""``ane export whisper --stateful``: refused early with one line where it cannot work; the
decoder exports with its caches as Core ML state."""

from __future__ import annotations

import os

from ane_bench.cli import cli
from ane_core.executor import Program
from click.testing import CliRunner

WHISPER_DECODER = [
    "export", "whisper", "--size", "tiny.en", "--weights", "random", "--component", "decoder",
    "--stateful", "--quiet",
]  # fmt: skip


def _one_line_refusal(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output


def test_stateful_with_a_target_before_macos15_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, [*WHISPER_DECODER, "--target", "macOS14", "-o", str(tmp_path)])
    _one_line_refusal(result, "deployment target macOS14 has no Core ML state")
    assert os.listdir(tmp_path) == []


def test_whisper_stateful_decoder_export(tmp_path):
    result = CliRunner().invoke(cli, [*WHISPER_DECODER, "--target", "macOS15", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    path = tmp_path / "whisper-tiny.en-decoder-ane-fp16-stateful.mlpackage"
    assert "0 cast" in result.output and path.name in result.output
    program = Program.load(path)
    assert sorted(program.states) == ["key_cache", "value_cache"]
    assert sorted(program.outputs) == ["alignment_weights", *(f"logits_{i}" for i in range(4))]
