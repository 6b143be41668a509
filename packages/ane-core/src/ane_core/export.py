"""The export pipeline: build -> trace -> convert -> save, one component at a time.

Why one function for every architecture: the plugin only builds modules; naming, precision,
deployment target, metadata, atomic save and the cast census are the same for all, and
living here keeps them identical for Whisper and whatever comes next.
"""

from __future__ import annotations

import gc
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ane_core.architecture import Architecture
from ane_core.compress import NO_COMPRESSION, Compression, compress_model, describe
from ane_core.convert import to_coreml, trace
from ane_core.errors import UsageError
from ane_core.metadata import PREFIX, apply_metadata, export_metadata
from ane_core.mil import op_counts
from ane_core.progress import Reporter, SilentReporter, timed_phase
from ane_core.save import check_target, staging
from ane_core.targets import Precision


@dataclass
class ExportResult:
    """What one export produced and what it cost."""

    path: Path
    architecture: str
    size: str | None
    component: str
    variant: str
    precision: str
    target: str
    compression: str = "none"
    timings: dict[str, float] = field(default_factory=dict)
    op_counts: Counter[str] = field(default_factory=Counter)

    @property
    def cast_count(self) -> int:
        return self.op_counts.get("cast", 0)


def package_name(
    architecture: str,
    size: str | None,
    component: str,
    variant: str,
    precision: Precision,
    compression: Compression = NO_COMPRESSION,
) -> str:
    """``whisper-tiny.en-encoder-ane-fp16-pal4.mlpackage``: size, component, arch, precision
    and weight compression (no suffix when uncompressed)."""
    parts = [architecture, size, component, variant, precision.value]
    return "-".join(p for p in parts if p) + compression.suffix + ".mlpackage"


def resolve_components(architecture: Architecture, component: str) -> list[str]:
    """``all`` expands to every component; anything unknown is a one-line error."""
    components = list(architecture.components())
    if component == "all":
        return components
    if component not in components:
        raise UsageError(
            f"{architecture.name} has no component {component!r}.",
            f"Use one of: {', '.join(components)}, all.",
        )
    return [component]


def check_variant(architecture: Architecture, variant: str) -> None:
    if variant not in architecture.variants:
        raise UsageError(
            f"{architecture.name} has no --arch {variant!r}.",
            f"Use one of: {', '.join(architecture.variants)}.",
        )


def export_component(
    architecture: Architecture,
    *,
    size: str | None,
    component: str,
    variant: str,
    weights: Any,
    precision: Precision,
    target: tuple[str, Any],
    output_dir: Path,
    force: bool = False,
    reporter: Reporter | None = None,
    build_options: dict[str, Any] | None = None,
    compression: Compression = NO_COMPRESSION,
) -> ExportResult:
    """Export one component of one variant to ``output_dir`` and return where it went."""
    reporter = reporter or SilentReporter()
    target_name, target_value = target
    name = package_name(architecture.name, size, component, variant, precision, compression)
    path = Path(output_dir) / name
    check_target(path, force=force)
    label = path.name
    result = ExportResult(
        path=path,
        architecture=architecture.name,
        size=size,
        component=component,
        variant=variant,
        precision=precision.value,
        target=target_name,
        compression=compression.name,
    )
    timings = result.timings
    with staging(path, force=force) as stage, stage.temporary_files():
        with timed_phase(reporter, label, "build", timings):
            model = architecture.build(component, variant, weights, **(build_options or {}))
        with timed_phase(reporter, label, "trace", timings):
            traced = trace(model)
        with timed_phase(reporter, label, "convert", timings):
            mlmodel = to_coreml(traced, model, precision, target_value)
            del traced
            model.module = None  # free the PyTorch weights before saving
            gc.collect()
            metadata = export_metadata(
                architecture=architecture.name,
                size=size,
                component=component,
                variant=variant,
                precision=precision.value,
                target=target_name,
                weights=weights,
                extra_packages=getattr(architecture, "metadata_packages", ()),
            )
            metadata[PREFIX + "compression"] = describe(compression, target_name)
            apply_metadata(mlmodel, model, metadata)
        if compression.enabled:  # metadata survives compression (coremltools copies it)
            with timed_phase(reporter, label, "compress", timings):
                mlmodel = compress_model(mlmodel, compression, target_name)
        with timed_phase(reporter, label, "save", timings):
            mlmodel.save(str(stage.path))
            del mlmodel
            stage.publish()
    result.op_counts = op_counts(path)
    return result
