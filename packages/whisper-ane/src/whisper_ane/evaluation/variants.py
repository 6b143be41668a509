"""What an evaluation compares: variants of one set of weights, spelled ``BACKEND:PRECISION:
COMPRESSION:LAYOUT``.

Why one spelling: a run's variants are a list on the command line, in the report and in the
cache key, so each must read the same everywhere. Fields after the backend may be left out
(``mil`` is ``mil:fp16:none:native``, ``torch-ane`` is ``torch-ane:fp32:none:native``; an empty
field takes its default, ``mil::int8``). ``stock`` is openai-whisper itself (``whisper.model.
Whisper`` in float32 on the CPU, ``whisper.transcribe``): the reference every run includes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ane_core.architecture import NATIVE_LAYOUT
from ane_core.compress import NO_COMPRESSION, parse_compression
from ane_core.errors import UsageError
from ane_core.targets import Precision, parse_precision

from whisper_ane.runtime.layout_transcription import check_layout_options
from whisper_ane.runtime.package_backend import PACKAGE_BACKENDS
from whisper_ane.runtime.transcription import BACKENDS, check_backend, default_precision

STOCK = "stock"
"""openai-whisper's own model and loop: the baseline."""

SPEC_HELP = (
    "BACKEND[:PRECISION[:COMPRESSION[:LAYOUT]]], e.g. mil:fp16:int8, torch-ane:fp32, "
    f"mil:fp16:none:whisperkit; backends {', '.join(BACKENDS)}"
)


@dataclass(frozen=True)
class Variant:
    """One way of running the weights."""

    backend: str
    precision: Precision
    compression: str = NO_COMPRESSION.name
    layout: str = NATIVE_LAYOUT

    @property
    def is_stock(self) -> bool:
        return self.backend == STOCK

    @property
    def label(self) -> str:
        """The canonical spelling (every field), for reports and file names."""
        if self.is_stock:
            return STOCK
        return f"{self.backend}:{self.precision.value}:{self.compression}:{self.layout}"

    @property
    def slug(self) -> str:
        """:attr:`label` as a file name."""
        return self.label.replace(":", "_")


STOCK_VARIANT = Variant(STOCK, Precision.FP32)


def parse_variant(spec: str) -> Variant:
    """``BACKEND[:PRECISION[:COMPRESSION[:LAYOUT]]]`` -> :class:`Variant`, or one line saying
    what is wrong: unknown backend, precision, compression or layout, compression of PyTorch
    modules (it applies to exported packages), or a layout that cannot decode so."""
    fields = spec.strip().split(":")
    if len(fields) > 4:
        raise UsageError(f"variant {spec!r} has more than 4 fields.", f"Write {SPEC_HELP}.")
    backend, precision, compression, layout = (fields + ["", "", "", ""])[:4]
    if backend == STOCK:
        if any(fields[1:]):
            raise UsageError(
                "variant 'stock' is openai-whisper in fp32 on the CPU and takes no fields.",
                "Write stock.",
            )
        return STOCK_VARIANT
    check_backend(backend)
    layout = layout or NATIVE_LAYOUT
    compress = parse_compression(compression or None)
    if layout != NATIVE_LAYOUT:
        chosen = parse_precision(precision) if precision else Precision.FP16
        check_layout_options(layout, backend, chosen)
        if compress.enabled:
            raise UsageError(
                f"variant {spec!r}: --layout {layout} exports its folder uncompressed.",
                "Use compression none with a layout, or the native layout.",
            )
        return Variant(backend, chosen, compress.name, layout)
    if compress.enabled and backend not in PACKAGE_BACKENDS:
        raise UsageError(
            f"variant {spec!r}: compression applies to exported packages, not {backend}.",
            f"Use a package backend ({', '.join(PACKAGE_BACKENDS)}).",
        )
    chosen = parse_precision(precision) if precision else default_precision(backend)
    return Variant(backend, chosen, compress.name, layout)
