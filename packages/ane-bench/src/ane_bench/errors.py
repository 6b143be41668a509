"""Turn :class:`ane_core.errors.AneError` into one line and an exit code, not a traceback."""

from __future__ import annotations

import sys
from typing import Any

import click
from ane_core.errors import AneError


class AneClickError(click.ClickException):
    """A ClickException that keeps the AneError's exit code."""

    def __init__(self, error: AneError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code


class AneGroup(click.Group):
    """Click group whose commands report user errors on one line (``--debug`` re-raises).

    Ctrl-C ends with exit code 130 and one line; the export pipeline has already removed its
    temporary files by then.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AneError as error:
            if ctx.meta.get("ane.debug"):
                raise
            raise AneClickError(error) from error
        except KeyboardInterrupt:
            if ctx.meta.get("ane.debug"):
                raise
            click.echo("Interrupted: nothing was left half-written.", err=True)
            sys.exit(130)
