"""Bad input through the real CLI: one clear line, exit code 2, nothing written.

Each case names what is wrong and the message a user sees (see the closing note of issue 9
for the full list). Only cheap validation runs: every case fails before conversion starts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ane_bench.cli import cli
from click.testing import CliRunner

EXPORT = ["export", "whisper", "--quiet", "--component", "encoder"]

CASES = {
    # case: (arguments after `ane export whisper`, expected message fragment)
    "unknown size": (["--size", "huge", "--weights", "random"], "unknown --size 'huge'"),
    "checkpoint missing": (["--size", "tiny.en", "--checkpoint", "/no/such.pt"], "does not exist"),
    "not a checkpoint": (
        ["--size", "tiny.en", "--checkpoint", "{not_a_checkpoint}"],
        "not a PyTorch",
    ),
    "truncated checkpoint": (["--size", "tiny.en", "--checkpoint", "{truncated_pt}"], "truncated"),
    "pickled code": (["--size", "tiny.en", "--checkpoint", "{pickled_code}"], "weights_only"),
    "wrong dimensions for --size": (
        ["--size", "base", "--checkpoint", "{tiny_en}"],
        "but --size base was asked",
    ),
    "CT2 without model.bin": (
        ["--size", "tiny.en", "--checkpoint", "{ct2_missing_model_bin}"],
        "model.bin",
    ),
    "CT2 truncated model.bin": (
        ["--size", "tiny.en", "--checkpoint", "{ct2_truncated}"],
        "truncated",
    ),
    "CT2 unknown dtype": (["--size", "tiny.en", "--checkpoint", "{ct2_unknown_dtype}"], "dtype"),
    "CT2 unsupported version": (
        ["--size", "tiny.en", "--checkpoint", "{ct2_version_5}"],
        "version",
    ),
    "CT2 model.bin is a Git LFS pointer": (
        ["--size", "tiny.en", "--checkpoint", "{ct2_lfs_pointer}"],
        "model.bin is a Git LFS pointer, not the file itself (the real file is 75,537,502 bytes",
    ),
    "CT2 header claiming 2^31 elements": (
        ["--size", "tiny.en", "--checkpoint", "{ct2_huge_dims}"],
        "model.bin is truncated: variable decoder/embeddings/weight needs bytes",
    ),
    ".pt is a Git LFS pointer": (
        ["--size", "tiny.en", "--checkpoint", "{pt_lfs_pointer}"],
        "pointer.pt is a Git LFS pointer",
    ),
    "HF safetensors truncated": (
        ["--size", "tiny.en", "--checkpoint", "{hf_truncated}"],
        "model.safetensors is truncated: its header describes",
    ),
    "HF safetensors is a Git LFS pointer": (
        ["--size", "tiny.en", "--checkpoint", "{hf_lfs_pointer}"],
        "model.safetensors is a Git LFS pointer",
    ),
    "unknown target": (
        ["--size", "tiny.en", "--weights", "random", "--target", "macOS99"],
        "unknown deployment target",
    ),
    "target too old for fp16": (
        ["--size", "tiny.en", "--weights", "random", "--target", "iOS15"],
        "cannot take float16",
    ),
    "unknown precision": (
        ["--size", "tiny.en", "--weights", "random", "--precision", "int4"],
        "unknown precision",
    ),
    "unknown component": (
        ["--size", "tiny.en", "--weights", "random", "--component", "joiner"],
        "no component 'joiner'",
    ),
    "unknown arch variant": (
        ["--size", "tiny.en", "--weights", "random", "--arch", "fast"],
        "no --arch 'fast'",
    ),
    "bad random seed": (["--size", "tiny.en", "--weights", "random:x"], "seed"),
}


def _fill(args: list[str], paths: dict[str, Path]) -> list[str]:
    return [a.format(**{k: str(v) for k, v in paths.items()}) for a in args]


@pytest.mark.parametrize("case", list(CASES))
def test_export_bad_input(case, bad_checkpoints, tiny_en_dir, tmp_path):
    args, fragment = CASES[case]
    out = tmp_path / "out"
    paths = {**bad_checkpoints, "tiny_en": tiny_en_dir}
    result = CliRunner().invoke(cli, [*EXPORT, *_fill(args, paths), "-o", str(out)])
    lines = [
        line
        for line in result.output.splitlines()
        if line.strip() and not line.startswith("weights:")
    ]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert not out.exists() or os.listdir(out) == []
    assert not bad_checkpoints["pickled_code_marker"].exists(), "pickled code was executed"


CLI_REPORTING_ITS_PEAK = """
import atexit, re, sys
from pathlib import Path
def peak():  # this process's own mark: ru_maxrss from wait4 would include the parent's
    status = Path("/proc/self/status").read_text()
    print("peak_kib=" + re.search(r"VmHWM:\\s+(\\d+)", status).group(1), file=sys.stderr)
atexit.register(peak)
from ane_bench.cli import main
main()
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="platform: the peak is read from /proc"
)
def test_header_claiming_gigabytes_stays_under_1_gib(bad_checkpoints, tmp_path):
    """`ane export` on the CTranslate2 header claiming 2^31 elements (8 GiB as float32), in
    its own process: exit 2 with the one line, and that process peaks under 1 GiB."""
    command = [sys.executable, "-c", CLI_REPORTING_ITS_PEAK]
    command += ["export", "whisper", "--quiet"]
    command += ["--size", "tiny.en", "--checkpoint", str(bad_checkpoints["ct2_huge_dims"])]
    result = subprocess.run(
        [*command, "-o", str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output = result.stdout.decode()
    lines = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert result.returncode == 2 and len(lines) == 1, output
    assert "decoder/embeddings/weight needs bytes" in lines[0] and "Traceback" not in output
    peak = int(re.search(r"^peak_kib=(\d+)$", output, re.MULTILINE).group(1)) * 1024
    assert peak < 1 << 30, f"peak RSS {peak / 2**20:.0f} MiB"


def test_unknown_architecture(tmp_path):
    result = CliRunner().invoke(cli, ["export", "nope", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "unknown architecture 'nope'" in result.output


def test_output_directory_not_writable():
    result = CliRunner().invoke(
        cli, [*EXPORT, "--size", "tiny.en", "--weights", "random", "-o", "/proc/ane-out"]
    )
    assert result.exit_code == 2 and "not writable" in result.output


def test_output_directory_is_a_file(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    result = CliRunner().invoke(
        cli, [*EXPORT, "--size", "tiny.en", "--weights", "random", "-o", str(afile)]
    )
    assert result.exit_code == 2 and "is a file" in result.output


def test_existing_target_needs_force(tmp_path):
    (tmp_path / "whisper-tiny.en-encoder-ane-fp16.mlpackage").mkdir()
    result = CliRunner().invoke(
        cli, [*EXPORT, "--size", "tiny.en", "--weights", "random", "-o", str(tmp_path)]
    )
    assert (
        result.exit_code == 2 and "already exists" in result.output and "--force" in result.output
    )


def test_debug_shows_the_traceback(tmp_path):
    result = CliRunner().invoke(cli, ["--debug", *EXPORT, "--size", "huge", "-o", str(tmp_path)])
    assert result.exit_code != 0 and result.exception is not None
    assert type(result.exception).__name__ == "UsageError"


def _wav(path: Path, samples) -> Path:
    import wave

    import numpy as np

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(np.asarray(samples, dtype=np.int16).tobytes())
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "does not exist"),
        ("empty", "is empty"),
        ("not audio", "is not audio"),
        ("no samples", "has no samples"),
        ("silent", "is silent"),
    ],
)
@pytest.mark.parametrize("command", ["transcribe", "parity"])
def test_bad_audio(command, case, message, tmp_path):
    files = {
        "missing": tmp_path / "missing.wav",
        "empty": tmp_path / "empty.wav",
        "not audio": tmp_path / "notes.wav",
        "no samples": _wav(tmp_path / "header_only.wav", []),
        "silent": _wav(tmp_path / "silent.wav", [0] * 16000),
    }
    files["empty"].write_bytes(b"")
    files["not audio"].write_text("not a sound\n")
    args = [command, "whisper", "--size", "tiny.en", "--weights", "random"]
    args += [str(files[case])] if command == "transcribe" else ["--audio", str(files[case])]
    result = CliRunner().invoke(cli, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and message in lines[0], result.output


def test_broken_and_duplicate_plugins_are_listed_not_fatal(monkeypatch):
    import importlib.metadata

    from ane_core import plugins
    from ane_core.testing import ToyPlugin

    broken = importlib.metadata.EntryPoint(name="broken", value="no_such_ane_plugin", group="ane")
    real = list(importlib.metadata.entry_points(group="ane"))
    monkeypatch.setattr(plugins.importlib.metadata, "entry_points", lambda group: [*real, broken])
    monkeypatch.setattr(plugins, "_loaded", False)
    monkeypatch.setattr(plugins, "_plugin_infos", {})
    plugins.register_plugin(ToyPlugin(), name="toy-a")
    plugins.register_plugin(ToyPlugin(), name="toy-b")
    try:
        result = CliRunner().invoke(cli, ["list"])
        assert result.exit_code == 0, result.output
        assert "broken" in result.output and "ModuleNotFoundError" in result.output
        assert "'toy' is registered by more than one plugin" in result.output
        assert "whisper" in result.output
    finally:
        plugins.unregister_plugin("toy-a")
        plugins.unregister_plugin("toy-b")


def test_unknown_build_option_value_fails_before_weights(tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            *EXPORT,
            "--logits",
            "x",
            "--size",
            "tiny.en",
            "--checkpoint",
            "/no/such.pt",
            "-o",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2 and "whisper --logits got 'x'" in result.output
