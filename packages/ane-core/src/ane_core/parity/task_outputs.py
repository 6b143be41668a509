"""Does a compressed package still give the same answer? Parity's second table
(``ane parity --compress``): per compression setting and input file, the task's output (for Whisper, the
transcript) next to the uncompressed package's.

Why beside PSNR: a few dB lost in the logits may or may not change a token; users see the
text. What the task output is comes from ``Architecture.task_outputs``, so nothing here
knows a model; architectures without one (``None``) get no table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ane_core.architecture import Architecture
from ane_core.compress import NO_COMPRESSION, Compression
from ane_core.targets import Precision


@dataclass
class TaskOutputRow:
    """One input file's output under one compression, against the uncompressed package's."""

    precision: str
    compression: str
    file: str
    output: str
    baseline: str

    @property
    def unchanged(self) -> bool:
        return self.output == self.baseline

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "unchanged": self.unchanged}


def compare_task_outputs(
    arch: Architecture,
    weights: Any,
    files: Sequence[str],
    precisions: Sequence[Precision],
    compressions: Sequence[Compression],
    packages_for: Callable[[Precision, Compression], Mapping[str, Path]],
    build_options: Mapping[str, Any] | None = None,
) -> list[TaskOutputRow]:
    """For each precision, every compressed setting's task outputs against those of the
    uncompressed packages at that precision (``packages_for`` gives each setting's paths,
    exported with ``build_options``). Empty when nothing is compressed, there is no file, or
    the architecture has no task."""
    options = dict(build_options or {})
    compressed = [c for c in compressions if c.enabled]
    if not compressed or not files:
        return []
    rows: list[TaskOutputRow] = []
    for precision in precisions:
        baseline = arch.task_outputs(
            weights, packages_for(precision, NO_COMPRESSION), files, precision, **options
        )
        if baseline is None:
            return []
        for compression in compressed:
            outputs = arch.task_outputs(
                weights, packages_for(precision, compression), files, precision, **options
            )
            if outputs is None:
                continue
            rows += [
                TaskOutputRow(precision.value, compression.name, file, outputs[file], text)
                for file, text in baseline.items()
            ]
    return rows
