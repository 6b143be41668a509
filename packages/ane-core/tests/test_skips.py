"""``ane_core.skips``: a skip names its optional extra, and ``CI=true`` allows no skip but a
platform one. Checked by running pytest on a small suite in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SUITE = """
import pytest
from ane_core.skips import require_extra

def test_missing_file():
    pytest.skip("fixture file missing")

@pytest.mark.skipif(True, reason="platform: exists on macOS only")
def test_macos_only():
    pass

def test_extra():
    require_extra("no_such_module_for_ane", extra="no-such", install="pip install no-such")

@pytest.mark.xfail(reason="a known failure is not a skip")
def test_known():
    assert False
"""


def _run(tmp_path, ci: str | None) -> str:
    (tmp_path / "conftest.py").write_text(
        "from ane_core.skips import pytest_runtest_makereport  # noqa: F401\n"
    )
    (tmp_path / "test_suite.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    return result.stdout


def test_outside_ci_skips_name_the_extra(tmp_path):
    out = _run(tmp_path, None)
    assert "3 skipped, 1 xfailed" in out
    assert "optional extra no-such is not installed (pip install no-such)" in out


@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_only_platform_skips_remain(tmp_path, ci):
    out = _run(tmp_path, ci)
    assert "2 failed, 1 skipped, 1 xfailed" in out
    assert "CI=true needs every extra" in out
    assert "skipped under CI=true" in out and "fixture file missing" in out
