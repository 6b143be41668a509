"""Which weights each size is measured with: ``--weights SOURCE`` or ``--weights SIZE=SOURCE``.

Why per size: real checkpoints come one per size (a tiny.en directory is no use for base),
while ``random`` fits every size; a bare SOURCE is the fallback for sizes not named.
"""

from __future__ import annotations

from collections.abc import Sequence

from ane_core.errors import UsageError


def weights_by_size(
    entries: Sequence[str], sizes: Sequence[str | None], known_sizes: Sequence[str]
) -> dict[str | None, str | None]:
    """Map each size to its weight source (``None``: the architecture's default source)."""
    fallback: str | None = None
    named: dict[str, str] = {}
    for entry in entries:
        size, sep, source = entry.partition("=")
        if sep and size in known_sizes:
            if not source:
                raise UsageError(f"--weights {entry!r} names no source.", "Use SIZE=SOURCE.")
            named[size] = source
        elif fallback is not None:
            raise UsageError(
                f"--weights given twice without a size ({fallback!r}, {entry!r}).",
                "Name the size of each: --weights SIZE=SOURCE.",
            )
        else:
            fallback = entry
    unused = sorted(set(named) - set(sizes))
    if unused:
        raise UsageError(
            f"--weights names size {unused[0]!r}, which is not benchmarked.",
            "Add --size for it or drop that --weights.",
        )
    return {size: named.get(size, fallback) if size is not None else fallback for size in sizes}
