"""The combinations one ``ane bench`` run measures, validated before anything slow starts.

Why grouped into export jobs: exporting every component of one (size, variant, precision)
in one process is what ``ane export --component all`` does, so its peak memory is the
figure users meet; the weights are loaded once per job, not once per component.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ane_core.architecture import Architecture
from ane_core.compress import NO_COMPRESSION, Compression, parse_compression
from ane_core.errors import UsageError
from ane_core.export import check_variant, resolve_components
from ane_core.targets import Precision, parse_precision


@dataclass(frozen=True)
class ExportJob:
    """One export process: every selected component of one size, variant, precision and
    weight compression."""

    size: str | None
    variant: str
    precision: Precision
    components: tuple[str, ...]
    compression: Compression = NO_COMPRESSION

    @property
    def label(self) -> str:
        parts = (self.size, self.variant, self.precision.value)
        compression = (self.compression.name,) if self.compression.enabled else ()
        return " ".join(p for p in (*parts, *compression) if p)


@dataclass(frozen=True)
class Matrix:
    """Everything one run covers; ``export_jobs`` in the order they run."""

    sizes: tuple[str | None, ...]
    variants: tuple[str, ...]
    precisions: tuple[Precision, ...]
    components: tuple[str, ...]
    compressions: tuple[Compression, ...] = (NO_COMPRESSION,)

    @property
    def export_jobs(self) -> list[ExportJob]:
        return [
            ExportJob(size, variant, precision, self.components, compression)
            for size in self.sizes
            for variant in self.variants
            for precision in self.precisions
            for compression in self.compressions
        ]


def _unique(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def build_matrix(
    architecture: Architecture,
    *,
    sizes: Sequence[str],
    variants: Sequence[str],
    precisions: Sequence[str],
    components: Sequence[str],
    compressions: Sequence[str] = (),
) -> Matrix:
    """Validate every axis (one-line errors) and fill empty axes with the defaults: the
    architecture's default size, all its variants, both precisions, all components, no
    weight compression."""
    if not sizes:
        default = architecture.default_size()
        known = list(architecture.sizes())
        if default is None and known:
            raise UsageError(
                f"{architecture.name} needs --size.", f"Use one or more of: {', '.join(known)}."
            )
        sizes = [default] if default is not None else []
    known_sizes = set(architecture.sizes())
    for size in sizes:
        if known_sizes and size not in known_sizes:
            raise UsageError(
                f"{architecture.name} has no size {size!r}.",
                f"Use one of: {', '.join(architecture.sizes())}.",
            )
    variants = _unique(variants) or tuple(architecture.variants)
    for variant in variants:
        check_variant(architecture, variant)
    chosen_precisions = tuple(
        dict.fromkeys(parse_precision(p) for p in precisions or ("fp16", "fp32"))
    )
    resolved: list[str] = []
    for component in components or ("all",):
        resolved.extend(resolve_components(architecture, component))
    return Matrix(
        sizes=tuple(dict.fromkeys(sizes)) or (None,),
        variants=variants,
        precisions=chosen_precisions,
        components=_unique(resolved),
        compressions=tuple(dict.fromkeys(parse_compression(c) for c in compressions))
        or (NO_COMPRESSION,),
    )
