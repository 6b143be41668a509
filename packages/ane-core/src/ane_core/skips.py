"""How this project's test suites skip: never silently, never in CI.

Why: a skipped test looks like a passed one in a summary line, and the checks that matter
most (real weights, real speech) are exactly those that need something beyond the package
itself. So a suite may skip only for an *optional extra* that a user may not have installed,
and the skip says which one and how to install it (:func:`require_extra`). Under
``CI=true`` (CI, and ``nox`` sessions run there) the environment is expected to hold every
extra, so the same call fails instead, and :func:`pytest_runtest_makereport` turns any other
skip into a failure too, except one whose reason starts with :data:`PLATFORM` (a check that
exists on macOS only, say). Import that hook into a suite's ``conftest.py`` to apply it.

Only test code imports this module (it imports pytest).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

OPTIONAL_EXTRA = "optional extra"
"""Every skip for a missing optional package starts with this."""

PLATFORM = "platform:"
"""A skip whose reason starts with this is about the operating system, never a missing file;
it stays a skip under ``CI=true``."""


def ci_strict() -> bool:
    """True under ``CI=true`` (or ``1``/``yes``): skips for missing things become failures."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_extra(module: str, *, extra: str, install: str) -> ModuleType:
    """Import ``module`` or skip the test naming the optional ``extra`` and its ``install``
    command; under ``CI=true`` fail instead."""
    try:
        return importlib.import_module(module)
    except ImportError:
        reason = f"{OPTIONAL_EXTRA} {extra} is not installed ({install})"
        if ci_strict():
            pytest.fail(f"CI=true needs every extra: {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Under ``CI=true``, a skipped test fails unless its reason starts with :data:`PLATFORM`."""
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and ci_strict()) or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    reason = reason.removeprefix("Skipped: ")
    if not reason.startswith(PLATFORM):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which allows no skip but {PLATFORM}: {reason}"
