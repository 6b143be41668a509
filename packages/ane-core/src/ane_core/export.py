"""The export pipeline: build -> trace -> convert -> save, one component at a time.

Why one function for every architecture: the plugin only builds modules; naming, precision,
deployment target, metadata, atomic save and the cast census are the same for all, and
living here keeps them identical for Whisper and whatever comes next.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ane_core.architecture import Architecture, ExportableModel
from ane_core.compress import NO_COMPRESSION, Compression, compress_model, describe
from ane_core.convert import to_coreml, trace
from ane_core.errors import UsageError
from ane_core.memory import release_freed_memory
from ane_core.metadata import PREFIX, apply_metadata, export_metadata
from ane_core.mil import op_counts
from ane_core.package_check import record_digests
from ane_core.package_items import add_items, items_metadata
from ane_core.progress import Reporter, SilentReporter, timed_phase
from ane_core.save import check_target, staging
from ane_core.targets import Precision, parse_target


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
    *,
    stateful: bool = False,
    tags: Sequence[str] = (),
) -> str:
    """``whisper-tiny.en-encoder-ane-fp16-pal4.mlpackage``: size, component, arch, precision
    and weight compression (no suffix when uncompressed); ``-stateful`` after the precision
    for a model that keeps its caches as Core ML state (its I/O differ), then the
    architecture's ``tags`` for other builds whose I/O differ (:meth:`Architecture.
    package_tags`)."""
    kept_state = "stateful" if stateful else None
    parts = [architecture, size, component, variant, precision.value, kept_state, *tags]
    return "-".join(p for p in parts if p) + compression.suffix + ".mlpackage"


def package_path(
    architecture: Architecture,
    output_dir: Path,
    *,
    size: str | None,
    component: str,
    variant: str,
    precision: Precision,
    compression: Compression = NO_COMPRESSION,
    stateful: bool = False,
    build_options: dict[str, Any] | None = None,
) -> Path:
    """Where :func:`export_component` writes ``component`` (``stateful`` as it applies to the
    component: the caller checks ``stateful_components``)."""
    tags = architecture.package_tags(
        component, variant, stateful=stateful, **dict(build_options or {})
    )
    name = package_name(
        architecture.name,
        size,
        component,
        variant,
        precision,
        compression,
        stateful=stateful,
        tags=tags,
    )
    return Path(output_dir) / name


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


def check_stateful(architecture: Architecture, variant: str, components: list[str]) -> None:
    """``--stateful`` needs at least one selected component with a stateful build."""
    if not set(components) & set(architecture.stateful_components(variant)):
        raise UsageError(
            f"{architecture.name} --arch {variant} has no stateful variant of "
            f"{', '.join(components)}.",
            "Drop --stateful, or pick a component that keeps a cache (see `ane list`).",
        )


def result_metadata(architecture: Architecture, result: ExportResult, weights: Any) -> dict:
    """The package metadata that says what ``result`` is and which weights it holds (both
    native packages and a layout's packages carry it; ``ane inspect`` reads it back)."""
    return export_metadata(
        architecture=result.architecture,
        size=result.size,
        component=result.component,
        variant=result.variant,
        precision=result.precision,
        target=result.target,
        weights=weights,
        extra_packages=getattr(architecture, "metadata_packages", ()),
    )


def convert_model(
    model: ExportableModel,
    *,
    precision: Precision,
    target: Any,
    metadata: dict[str, str],
    reporter: Reporter,
    label: str,
    timings: dict[str, float],
) -> Any:
    """Trace and convert a built model (phases ``trace`` and ``convert``), free its PyTorch
    weights and write ``metadata`` and the I/O descriptions into the ``MLModel``.

    Why a function of its own: every export, one component (:func:`export_component`) or
    a whole app layout (:mod:`ane_core.layout_export`), turns a built model into a Core ML
    model the same way.
    """
    with timed_phase(reporter, label, "trace", timings):
        traced = trace(model)
    with timed_phase(reporter, label, "convert", timings):
        mlmodel = to_coreml(traced, model, precision, target)
        del traced
        model.module = None  # free the PyTorch weights before saving
        gc.collect()
        apply_metadata(mlmodel, model, metadata)
    return mlmodel


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
    stateful: bool = False,
) -> ExportResult:
    """Export one component of one variant to ``output_dir`` and return where it went.

    ``stateful``: build the component with ``stateful=True`` (its caches become Core ML
    state) if the architecture lists it in ``stateful_components(variant)``; other
    components export as usual, so ``--component all --stateful`` works.
    """
    reporter = reporter or SilentReporter()
    target_name, target_value = target
    stateful = stateful and component in architecture.stateful_components(variant)
    options = dict(build_options or {})
    if stateful:
        parse_target(target_name, precision=precision, stateful=True)  # before any slow work
        options["stateful"] = True
    path = package_path(
        architecture,
        output_dir,
        size=size,
        component=component,
        variant=variant,
        precision=precision,
        compression=compression,
        stateful=stateful,
        build_options=build_options,
    )
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
            model = architecture.build(component, variant, weights, **options)
            items = architecture.package_items(component, variant, weights, precision, **options)
            item_metadata = items_metadata(items)  # refuses repeated names before converting
        metadata = result_metadata(architecture, result, weights)
        metadata[PREFIX + "compression"] = describe(compression, target_name)
        metadata.update(item_metadata)
        mlmodel = convert_model(
            model,
            precision=precision,
            target=target_value,
            metadata=metadata,
            reporter=reporter,
            label=label,
            timings=timings,
        )
        if compression.enabled:  # metadata survives compression (coremltools copies it)
            with timed_phase(reporter, label, "compress", timings):
                mlmodel = compress_model(mlmodel, compression, target_name)
        with timed_phase(reporter, label, "save", timings):
            mlmodel.save(str(stage.path))
            del mlmodel
            add_items(stage.path, items)
            record_digests(stage.path)  # last write: the digests cover the files as published
            stage.publish()
    release_freed_memory()  # the next component's peak starts from what this one left
    result.op_counts = op_counts(path)
    return result
