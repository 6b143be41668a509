"""``ane transcribe``: plumbing with in-process toy plugins (the real thing with whisper is in
the repository's tests/, where the plugin is installed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ane_core import hookimpl, plugins
from ane_core.testing import ToyArchitecture, ToyPlugin
from click.testing import CliRunner

from ane_bench.cli import cli


class CountingArchitecture(ToyArchitecture):
    """A toy that 'transcribes' a file into its byte count, to check what the CLI passes."""

    name = "toy-asr"
    transcribe_backends = ("count",)

    def transcriber(self, weights, *, backend, precision, build_options):
        value = precision.value if precision else "fp32"  # the toy's default

        def run(path, *, language, task, without_timestamps, **options):
            size = Path(path).stat().st_size
            text = f"{size} bytes {backend} {value} {language} {task} {without_timestamps}"
            self.seen = {**options, "build_options": build_options}
            result = {"audio": str(path), "language": language, "text": text, "segments": []}
            return {**result, "precision": value}

        return run


COUNTING = CountingArchitecture()


class CountingPlugin:
    @hookimpl
    def register_architectures(self, register):
        register(COUNTING)


@pytest.fixture
def toys():
    plugins.register_plugin(ToyPlugin(), name="toy-tr")
    plugins.register_plugin(CountingPlugin(), name="toy-asr")
    yield
    plugins.unregister_plugin("toy-tr")
    plugins.unregister_plugin("toy-asr")


@pytest.fixture
def sound(tmp_path):
    path = tmp_path / "a.wav"
    path.write_bytes(b"x" * 123)
    return path


def _one_line_error(result, message):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output


def test_architecture_without_transcriber_is_refused(toys, sound):
    result = CliRunner().invoke(cli, ["transcribe", "toy", str(sound)])
    _one_line_error(result, "architecture toy cannot transcribe")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "gpu"], "unknown backend 'gpu'"),
        (["--precision", "int4"], "unknown precision 'int4'"),
    ],
)
def test_bad_options_are_one_line(toys, sound, args, message):
    result = CliRunner().invoke(
        cli, ["transcribe", "toy-asr", str(sound), "--backend", "count", *args]
    )
    _one_line_error(result, message)


def test_missing_audio_is_one_line(toys, tmp_path):
    missing = tmp_path / "nope.wav"
    result = CliRunner().invoke(cli, ["transcribe", "toy-asr", str(missing), "--backend", "count"])
    _one_line_error(result, f"input file {missing} does not exist")


def test_options_reach_the_transcriber_and_json_lists_files(toys, sound, tmp_path):
    other = tmp_path / "b.wav"
    other.write_bytes(b"y" * 7)
    args = ["transcribe", "toy-asr", str(sound), str(other), "--backend", "count"]
    plain = CliRunner().invoke(cli, [*args, "--language", "de", "--without-timestamps"])
    assert plain.exit_code == 0, plain.output
    assert plain.output.splitlines() == [
        f"{sound}: 123 bytes count fp32 de transcribe True",
        f"{other}: 7 bytes count fp32 de transcribe True",
    ]
    as_json = CliRunner().invoke(
        cli, [*args, "--precision", "fp16", "--task", "translate", "--json"]
    )
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.output)
    assert report["backend"] == "count" and report["precision"] == "fp16"
    assert [f["text"] for f in report["files"]] == [
        "123 bytes count fp16 None translate False",
        "7 bytes count fp16 None translate False",
    ]


def test_whisper_options_pass_through_under_both_spellings(toys, sound, tmp_path):
    args = ["transcribe", "toy-asr", str(sound), "--backend", "count"]
    extra = [
        "--temperature", "0.4", "--temperature_increment_on_fallback", "None", "--best-of", "3",
        "--condition_on_previous_text", "False", "--initial-prompt", "Hello.",
        "--word-timestamps", "--max_line_width", "20", "-f", "srt", "-o", str(tmp_path / "out"),
    ]  # fmt: skip
    result = CliRunner().invoke(cli, [*args, *extra])
    assert result.exit_code == 0, result.output
    seen = COUNTING.seen
    assert seen["temperature"] == 0.4 and seen["temperature_increment_on_fallback"] is None
    assert seen["best_of"] == 3 and seen["condition_on_previous_text"] is False
    assert seen["initial_prompt"] == "Hello." and seen["word_timestamps"] is True
    assert seen["max_line_width"] == 20 and seen["beam_size"] is None
    assert seen["output_format"] == "srt" and seen["output_dir"] == tmp_path / "out"
    assert seen["logprob_threshold"] == -1.0 and seen["build_options"] == {}


def test_build_options_follow_the_audio_and_are_checked(toys, sound):
    args = ["transcribe", "toy-asr", str(sound), "--backend", "count", "--frames", "3"]
    _one_line_error(CliRunner().invoke(cli, args), "toy-asr has no option --frames")
    bad = ["transcribe", "toy-asr", str(sound), "--backend", "count", "--best_of", "many"]
    result = CliRunner().invoke(cli, bad)
    assert result.exit_code == 2 and "'many' is not int or None" in result.output
