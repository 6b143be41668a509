"""The ``mil`` (and, on macOS, ``coreml``) decoding backend: exported packages, not modules.

Why: the decoding loop (:mod:`whisper_ane.runtime.decoding`) drives any :class:`ComponentRunner`;
wrapping each exported ``.mlpackage`` in one, run by ane-core's reference executor or by Core
ML, lets ``whisper.transcribe`` decode with exactly what ships, so a transcript can be
compared with stock whisper's on any OS.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from ane_core.architecture import Architecture, ExportableModel
from ane_core.compress import NO_COMPRESSION, Compression
from ane_core.executor import load_program
from ane_core.executor.coreml import parse_compute_units, require_macos
from ane_core.export import export_component, package_name
from ane_core.targets import DEFAULT_TARGET, Precision, parse_target

from whisper_ane.export.components import COMPONENTS, STATEFUL_COMPONENTS, build_component
from whisper_ane.runtime.backends import ComponentRunner, WhisperBackend
from whisper_ane.weights.source import LoadedWeights

PACKAGE_BACKENDS = ("mil", "coreml", "mil-stateful", "coreml-stateful")
"""``mil``: the numpy reference executor (any OS); ``coreml``: Core ML itself (macOS).
``-stateful``: the same with the ``--stateful`` decoder (caches as Core ML state, exported
for macOS15)."""

STATEFUL_TARGET = "macOS15"
"""Deployment target of ``-stateful`` exports (the first with Core ML state)."""


def split_backend(backend: str) -> tuple[str, bool]:
    """``mil-stateful`` -> ``("mil", True)``: the executor and whether the decoder is stateful."""
    executor, _, flavour = backend.partition("-")
    return executor, flavour == "stateful"


class PackageRunner(ComponentRunner):
    """One exported package behind the :class:`ComponentRunner` interface."""

    def __init__(
        self,
        path: str | Path,
        model: ExportableModel,
        precision: Precision,
        *,
        backend: str = "mil",
        compute_units: str = "all",
    ) -> None:
        self.path = Path(path)
        self.inputs = tuple(model.inputs)
        self.outputs = tuple(model.outputs)
        self.float_dtype = np.dtype(precision.numpy_dtype)
        self.program = load_program(path, backend=backend, compute_units=compute_units)
        self.state = self.program.new_state() if self.program.states else None

    def reset_state(self) -> None:
        if self.state is not None:
            self.state = self.program.new_state()

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {
            spec.name: np.asarray(
                inputs[spec.name], dtype=np.int32 if spec.kind == "int" else self.float_dtype
            )
            for spec in self.inputs
        }
        return self.program(feed) if self.state is None else self.program(feed, state=self.state)


def export_packages(
    architecture: Architecture,
    weights: LoadedWeights,
    size: str | None,
    precision: Precision,
    output_dir: Path,
    *,
    target: str = DEFAULT_TARGET,
    compression: Compression = NO_COMPRESSION,
    stateful: bool = False,
) -> dict[str, Path]:
    """The ANE packages of every component in ``output_dir``, exporting those not there yet
    (``compression``: weight-compressed packages, named with its suffix; ``stateful``: the
    decoder keeps its caches as Core ML state, ``target`` macOS15 or newer). ``architecture``
    is the registered Whisper architecture, which names and exports them."""
    paths = {}
    for component in COMPONENTS:
        keeps_state = stateful and component in STATEFUL_COMPONENTS["ane"]
        path = Path(output_dir) / package_name(
            architecture.name, size, component, "ane", precision, compression, stateful=keeps_state
        )
        if not path.exists():
            export_component(
                architecture,
                size=size,
                component=component,
                variant="ane",
                weights=weights,
                precision=precision,
                target=parse_target(target, precision=precision, stateful=keeps_state),
                output_dir=Path(output_dir),
                compression=compression,
                stateful=keeps_state,
            )
        paths[component] = path
    return paths


def package_backend(
    packages: Mapping[str, Path],
    weights: LoadedWeights,
    precision: Precision,
    *,
    backend: str = "mil",
    compute_units: str = "all",
    stateful: bool = False,
) -> WhisperBackend:
    """A :class:`WhisperBackend` whose three components are the given ANE packages
    (``stateful``: the decoder package is a ``--stateful`` export)."""
    runners = {
        component: PackageRunner(
            packages[component],
            build_component(component, "ane", weights, **_stateful_option(component, stateful)),
            precision,
            backend=backend,
            compute_units=compute_units,
        )
        for component in COMPONENTS
    }
    return WhisperBackend(name=backend, dims=weights.dims, **runners)


def _stateful_option(component: str, stateful: bool) -> dict[str, bool]:
    return {"stateful": True} if stateful and component in STATEFUL_COMPONENTS["ane"] else {}


PACKAGES_DIR_ENV = "ANE_PACKAGES_DIR"
"""Directory in which :func:`exported_backend` keeps its exports and reuses them across runs
(delete it after changing the export code). Unset: a fresh temporary directory per backend."""


def _weights_key(weights: LoadedWeights) -> str:
    """A directory name per set of weights, so kept exports of two models never mix."""
    return (weights.sha256 or hashlib.sha256(weights.source.encode()).hexdigest())[:16]


def packages_directory(
    weights: LoadedWeights,
) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    """Where exports of ``weights`` are kept for decoding: ``$ANE_PACKAGES_DIR/KEY`` (kept
    across runs), or a fresh temporary directory, returned too so its owner keeps it alive
    as long as it reads the packages."""
    kept = os.environ.get(PACKAGES_DIR_ENV)
    scratch = None if kept else tempfile.TemporaryDirectory(prefix="ane-packages-")
    directory = Path(kept) / _weights_key(weights) if kept else Path(scratch.name)
    directory.mkdir(parents=True, exist_ok=True)
    return directory, scratch


def exported_backend(
    architecture: Architecture,
    weights: LoadedWeights,
    backend: str,
    precision: Precision,
    *,
    size: str | None = None,
    compute_units: str = "all",
    compression: Compression = NO_COMPRESSION,
) -> WhisperBackend:
    """Export the ANE packages of ``weights`` (or reuse them from ``$ANE_PACKAGES_DIR``),
    compressed as asked, and wrap them as a decoding backend. A temporary directory lives as
    long as the backend. ``backend``: one of :data:`PACKAGE_BACKENDS`; ``architecture``: the
    registered Whisper architecture (see :func:`export_packages`)."""
    parse_compute_units(compute_units)
    executor, stateful = split_backend(backend)
    if executor == "coreml":
        require_macos()  # before minutes of exporting
    directory, scratch = packages_directory(weights)
    packages = export_packages(
        architecture,
        weights,
        size,
        precision,
        directory,
        target=STATEFUL_TARGET if stateful else DEFAULT_TARGET,
        compression=compression,
        stateful=stateful,
    )
    result = package_backend(
        packages,
        weights,
        precision,
        backend=executor,
        compute_units=compute_units,
        stateful=stateful,
    )
    result.name = backend
    result.scratch = scratch  # removed with the backend, not before (Core ML reads lazily)
    return result
