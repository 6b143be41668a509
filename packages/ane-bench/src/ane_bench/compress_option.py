"""The one ``--compress`` option shared by ``ane export``, ``ane parity`` and ``ane bench``.

Why one definition: the three commands must accept the same spellings with the same help,
and parse them with :func:`ane_core.compress.parse_compression`, so a setting measured by
``parity`` or ``bench`` is exactly the one ``export`` writes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click
from ane_core.compress import COMPRESSIONS, NO_COMPRESSION, Compression, parse_compression

COMPRESS_HELP = (
    f"Weight compression: {', '.join(COMPRESSIONS)} (palettes are grouped per channel on "
    "macOS15/iOS18 and later)."
)


def compress_option(*, multiple: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--compress NAME``: one value (``export``), or repeatable (``parity``, ``bench``:
    each value is one more setting measured; default ``none``)."""
    if multiple:
        return click.option(
            "--compress",
            "compress",
            multiple=True,
            metavar="NAME",
            help=f"{COMPRESS_HELP} Repeat to measure several. Default: none.",
        )
    return click.option(
        "--compress", "compress", default="none", show_default=True, help=COMPRESS_HELP
    )


def parse_compressions(values: Sequence[str]) -> tuple[Compression, ...]:
    """Repeated ``--compress`` values, validated, duplicates dropped; ``(none,)`` if empty."""
    parsed = tuple(dict.fromkeys(parse_compression(v) for v in values))
    return parsed or (NO_COMPRESSION,)
