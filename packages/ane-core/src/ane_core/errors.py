"""User-facing errors.

Why: every command must fail with one clear line (what is wrong, what to do) and a
non-zero exit code, never a traceback from deep inside coremltools. Code that detects
bad input raises :class:`AneError`; the CLI prints ``str(error)`` and exits with
``error.exit_code``. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class AneError(Exception):
    """A problem the user can fix. The message names the problem and the fix, on one line."""

    exit_code: int = 2

    def __init__(self, problem: str, fix: str | None = None) -> None:
        message = problem if fix is None else f"{problem} {fix}"
        super().__init__(" ".join(message.split()))
        self.problem = problem
        self.fix = fix


class UsageError(AneError):
    """Bad option values or combinations (unknown architecture, size, target...)."""


class WeightsError(AneError):
    """A weight source that cannot be read: missing, truncated, unsafe or mismatched."""


class PackageError(UsageError):
    """A saved ``.mlpackage`` that cannot be read: not a package at all, a part missing, a
    file cut short or changed, or a Git LFS pointer where a file should be.

    A :class:`UsageError` because the package is what the user passed (existing callers that
    catch usage errors for a bad path keep working); its own class so a caller can tell a
    damaged package apart from a bad option.
    """


class OutputError(AneError):
    """The output location cannot be written, or already holds the target."""


def brief(error: BaseException, limit: int = 200) -> str:
    """``error``'s message on one line, at most ``limit`` characters (its type's name when it
    has none): what a one-line error may quote of an exception raised by a library."""
    text = " ".join(str(error).split())
    return (text or type(error).__name__)[:limit]
