"""Errors of the reference executor, as one-line :class:`ane_core.errors.AneError` messages.

Why separate classes: the parity command and the tests need to tell "the executor cannot run
this program" (an op it does not implement, Core ML off macOS) apart from a wrong result.
"""

from __future__ import annotations

from ane_core.errors import AneError, UsageError


class UnsupportedOpError(AneError):
    """The program uses a MIL op the reference executor does not implement.

    Never guessed around: running a program with an op we do not model would report parity
    numbers for a computation nobody wrote.
    """

    def __init__(self, op_type: str, op_name: str | None = None) -> None:
        where = f" (op {op_name!r})" if op_name else ""
        super().__init__(
            f"the reference executor does not implement the MIL op {op_type!r}{where}.",
            "Add it to ane_core.executor.ops, or run the package with Core ML on macOS.",
        )
        self.op_type = op_type


class ProgramInputError(UsageError):
    """Inputs that do not match what the program declares (name, shape)."""


class CoreMLUnavailableError(UsageError):
    """Core ML itself was asked for on a machine that cannot run it."""
