"""The one weight-source option shared by every command that loads a model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def weights_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--checkpoint SOURCE`` (``--weights`` is the same option) and ``--seed``.

    SOURCE is a checkpoint file, a checkpoint directory, ``random`` (seeded, for shape-only
    exports and benchmarks), or nothing for the architecture's default (e.g. a download).
    """
    command = click.option(
        "--seed", type=int, default=0, show_default=True, help="Seed for --weights random."
    )(command)
    command = click.option(
        "--checkpoint",
        "--weights",
        "checkpoint",
        metavar="SOURCE",
        help="Weights: a checkpoint file or directory, or 'random'. Default: the architecture's download.",
    )(command)
    return command
