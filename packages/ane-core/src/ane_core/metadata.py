"""Model metadata: what a user (or Xcode) needs to know where an exported model came from."""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Iterable
from typing import Any

from ane_core.datatypes import METADATA_PREFIX, ExportableModel

_VERSIONED_PACKAGES = ("ane-core", "coremltools", "torch", "numpy")
PREFIX = METADATA_PREFIX


def package_versions(extra: Iterable[str] = ()) -> dict[str, str]:
    """Installed versions of the packages that shape an export (missing ones are skipped)."""
    versions: dict[str, str] = {}
    for name in (*_VERSIONED_PACKAGES, *extra):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def export_metadata(
    *,
    architecture: str,
    size: str | None,
    component: str,
    variant: str,
    precision: str,
    target: str,
    weights: Any,
    extra_packages: Iterable[str] = (),
) -> dict[str, str]:
    """String metadata stored in the package (Core ML user-defined metadata is str -> str)."""
    meta = {
        "architecture": architecture,
        "size": size or "",
        "component": component,
        "variant": variant,
        "precision": precision,
        "deployment_target": target,
        "weights_source": getattr(weights, "source", ""),
        "checkpoint": getattr(weights, "checkpoint_path", None) or "",
        "checkpoint_sha256": getattr(weights, "sha256", None) or "",
        "python": platform.python_version(),
    }
    for name, version in package_versions(extra_packages).items():
        meta[f"version.{name}"] = version
    return {PREFIX + key: value for key, value in meta.items()}


def apply_metadata(mlmodel: Any, model: ExportableModel, metadata: dict[str, str]) -> None:
    """Write descriptions and metadata into an ``MLModel`` before it is saved."""
    mlmodel.author = "ane"
    mlmodel.license = "Same as the source checkpoint"
    arch = metadata.get(PREFIX + "architecture", "")
    comp = metadata.get(PREFIX + "component", "")
    variant = metadata.get(PREFIX + "variant", "")
    mlmodel.short_description = (
        f"{arch} {metadata.get(PREFIX + 'size', '')} {comp} "
        f"({variant} architecture, {metadata.get(PREFIX + 'precision', '')})"
    ).replace("  ", " ")
    mlmodel.version = metadata.get(PREFIX + "version.ane-core", "")
    for key, value in {**metadata, **{PREFIX + k: v for k, v in model.metadata.items()}}.items():
        mlmodel.user_defined_metadata[key] = str(value)
    for spec in model.inputs:
        mlmodel.input_description[spec.name] = spec.description
    for spec in model.outputs:
        mlmodel.output_description[spec.name] = spec.description
