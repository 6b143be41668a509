"""A real exported package (Whisper tiny.en encoder, FP16) damaged the ways packages from
elsewhere arrive: `ane inspect` exits 2 with one line naming the file, never a traceback, and
the executor's loader raises an ane_core error; `--verify` checks every byte against the
sha256 the export recorded."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from ane_bench.cli import cli
from ane_core.errors import AneError
from ane_core.executor import Program
from ane_core.fuzzing import lfs_pointer_text
from click.testing import CliRunner

WEIGHTS = Path("Data/com.apple.CoreML/weights/weight.bin")
MODEL = Path("Data/com.apple.CoreML/model.mlmodel")


@pytest.fixture(scope="session")
def tiny_en_encoder(tiny_en_dir, tmp_path_factory) -> Path:
    """One real export per session (about 10 s); tests damage copies of it."""
    out = tmp_path_factory.mktemp("package")
    args = ["export", "whisper", "--size", "tiny.en", "--component", "encoder", "--quiet"]
    result = CliRunner().invoke(cli, [*args, "--checkpoint", str(tiny_en_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out / "whisper-tiny.en-encoder-ane-fp16.mlpackage"


def _damaged(package: Path, damage: str, where: Path) -> Path:
    copy = where / package.name
    shutil.copytree(package, copy)
    weights = copy / WEIGHTS
    size = weights.stat().st_size
    if damage == "weight.bin cut to half":
        os.truncate(weights, size // 2)
    elif damage == "weight.bin is a Git LFS pointer":
        weights.write_bytes(lfs_pointer_text("4d" * 32, size))
    elif damage == "garbage model.mlmodel":
        (copy / MODEL).write_bytes(os.urandom(4096))
    elif damage == "no Manifest.json":
        (copy / "Manifest.json").unlink()
    elif damage == "a plain file":
        shutil.rmtree(copy)
        copy.write_bytes(b"PK\x03\x04 a zip saved under the package's name\n")
    return copy


DAMAGES = {
    # damage: the file the line names (relative to the package), what it says
    "weight.bin cut to half": (WEIGHTS, "is truncated: the weight of"),
    "weight.bin is a Git LFS pointer": (WEIGHTS, "is a Git LFS pointer, not the file itself"),
    "garbage model.mlmodel": (MODEL, "is not a Core ML model spec"),
    "no Manifest.json": (Path(), "is not an .mlpackage directory: it has no Manifest.json"),
    "a plain file": (Path(), "is not an .mlpackage directory (it is a file"),
}


@pytest.mark.parametrize("verify", [False, True], ids=["inspect", "inspect --verify"])
@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_package_is_exit_2_and_one_line(tiny_en_encoder, tmp_path, damage, verify):
    package = _damaged(tiny_en_encoder, damage, tmp_path)
    args = ["inspect", str(package), *(["--verify"] if verify else [])]
    result = CliRunner().invoke(cli, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    named, says = DAMAGES[damage]
    assert lines[0].startswith(f"Error: {package / named} ") and says in lines[0], lines[0]
    if "LFS" in damage:  # the size the pointer states: what `git lfs pull` would fetch
        size = (tiny_en_encoder / WEIGHTS).stat().st_size
        assert f"(the real file is {size:,} bytes" in lines[0] and "git lfs pull" in lines[0]


@pytest.mark.parametrize("damage", ["weight.bin cut to half", "weight.bin is a Git LFS pointer"])
def test_executor_loader_raises_an_ane_core_error(tiny_en_encoder, tmp_path, damage):
    package = _damaged(tiny_en_encoder, damage, tmp_path)
    with pytest.raises(AneError) as caught:
        Program.load(package)
    assert DAMAGES[damage][1] in str(caught.value) and str(package / WEIGHTS) in str(caught.value)


def test_verify_reads_every_byte_against_the_export_record(tiny_en_encoder, tmp_path):
    result = CliRunner().invoke(cli, ["inspect", str(tiny_en_encoder), "--verify"])
    assert result.exit_code == 0, result.output
    assert f"{WEIGHTS.as_posix()}: sha256 " in result.output
    assert "(matches the sha256 recorded at export)" in result.output
    report = json.loads(
        CliRunner().invoke(cli, ["inspect", str(tiny_en_encoder), "--verify", "--json"]).output
    )
    (verified,) = report["verified"]
    assert verified["status"] == "matches"
    assert verified["bytes"] == (tiny_en_encoder / WEIGHTS).stat().st_size
    assert report["package_check"]["weight_files"][0]["blobs"] > 0

    package = _damaged(tiny_en_encoder, "none", tmp_path)
    data = bytearray((package / WEIGHTS).read_bytes())
    data[-100] ^= 0x01  # one bit of one weight: every header still in order
    (package / WEIGHTS).write_bytes(bytes(data))
    plain = CliRunner().invoke(cli, ["inspect", str(package)])
    assert plain.exit_code == 0 and "contents not verified" in plain.output
    checked = CliRunner().invoke(cli, ["inspect", str(package), "--verify"])
    assert checked.exit_code == 2, checked.output
    assert checked.output.startswith(f"Error: {package / WEIGHTS} has sha256 ")
    assert "its bytes changed after export" in checked.output
