"""``ane doctor``: off macOS one line and exit 2, before anything is read (the Mac path is
tested in ane-core's test_doctor.py with Core ML faked at its boundary)."""

from __future__ import annotations

import platform

import pytest
from click.testing import CliRunner

from ane_bench.cli import cli


@pytest.mark.skipif(
    platform.system() == "Darwin", reason="platform: Core ML's compute plan exists on macOS"
)
def test_doctor_off_macos_is_one_line_and_exit_2(tmp_path):
    result = CliRunner().invoke(cli, ["doctor", str(tmp_path / "missing.mlpackage")])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: ane doctor needs macOS 14.4+") and "ane inspect" in line
