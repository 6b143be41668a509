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
from typing import Any

import numpy as np
from ane_core.architecture import Architecture, ExportableModel
from ane_core.compress import NO_COMPRESSION, Compression
from ane_core.executor import load_program
from ane_core.executor.coreml import parse_compute_units, require_macos
from ane_core.export import export_component, package_path
from ane_core.package_items import load_item
from ane_core.targets import DEFAULT_TARGET, Precision, parse_target

from whisper_ane.export.components import COMPONENTS, STATEFUL_COMPONENTS, build_component
from whisper_ane.export.host_embedding import TABLE_ITEM
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
        self.metadata = dict(model.metadata)
        self.program = load_program(path, backend=backend, compute_units=compute_units)
        self.state_names = tuple(self.program.states)
        self._token_table: np.ndarray | None = None

    def token_table(self) -> np.ndarray:
        """The table shipped inside the package (``Data/ane/token_embedding.npy``), read once:
        what an app indexes, so the rows fed here are exactly the app's."""
        if self._token_table is None:
            table = np.asarray(load_item(self.path, TABLE_ITEM))
            self._token_table = table.astype(self.float_dtype, copy=False)
        return self._token_table

    def new_state(self) -> Any:
        return self.program.new_state() if self.program.states else None

    def write_state(self, state: Any, name: str, value: np.ndarray) -> None:
        self.program.write_state(state, name, value)

    def __call__(
        self, inputs: Mapping[str, np.ndarray], state: Any = None
    ) -> dict[str, np.ndarray]:
        feed = {
            spec.name: np.asarray(
                inputs[spec.name], dtype=np.int32 if spec.kind == "int" else self.float_dtype
            )
            for spec in self.inputs
        }
        return self.program(feed) if state is None else self.program(feed, state=state)


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
    build_options: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """The ANE packages of every component in ``output_dir``, exporting those not there yet
    (``compression``: weight-compressed packages, named with its suffix; ``stateful``: the
    decoder keeps its caches as Core ML state, ``target`` macOS15 or newer; ``build_options``
    as ``ane export`` takes them). ``architecture`` is the registered Whisper architecture,
    which names and exports them."""
    paths = {}
    for component in COMPONENTS:
        keeps_state = stateful and component in STATEFUL_COMPONENTS["ane"]
        path = package_path(
            architecture,
            output_dir,
            size=size,
            component=component,
            variant="ane",
            precision=precision,
            compression=compression,
            stateful=keeps_state,
            build_options=dict(build_options or {}),
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
                build_options=dict(build_options or {}),
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
    build_options: Mapping[str, Any] | None = None,
) -> WhisperBackend:
    """A :class:`WhisperBackend` whose three components are the given ANE packages
    (``stateful``: the decoder package is a ``--stateful`` export; ``build_options``: those
    it was exported with, which fix its inputs and outputs)."""
    runners = {
        component: PackageRunner(
            packages[component],
            build_component(
                component,
                "ane",
                weights,
                **dict(build_options or {}),
                **_stateful_option(component, stateful),
            ),
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


def _packages_key(weights: LoadedWeights, build_options: Mapping[str, Any]) -> str:
    """A directory name per set of weights and build options, so kept exports of two
    models, or of one model built two ways (say, with and without alignment heads), never
    mix."""
    key = (weights.sha256 or hashlib.sha256(weights.source.encode()).hexdigest())[:16]
    if build_options:
        text = repr(sorted(build_options.items()))
        key += "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return key


def packages_directory(
    weights: LoadedWeights, build_options: Mapping[str, Any] | None = None
) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    """Where exports of ``weights`` (built with ``build_options``) are kept for decoding:
    ``$ANE_PACKAGES_DIR/KEY`` (kept across runs), or a fresh temporary directory, returned
    too so its owner keeps it alive as long as it reads the packages."""
    kept = os.environ.get(PACKAGES_DIR_ENV)
    scratch = None if kept else tempfile.TemporaryDirectory(prefix="ane-packages-")
    key = _packages_key(weights, dict(build_options or {}))
    directory = Path(kept) / key if kept else Path(scratch.name)
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
    build_options: Mapping[str, Any] | None = None,
) -> WhisperBackend:
    """Export the ANE packages of ``weights`` (or reuse them from ``$ANE_PACKAGES_DIR``),
    compressed as asked, and wrap them as a decoding backend. A temporary directory lives as
    long as the backend. ``backend``: one of :data:`PACKAGE_BACKENDS`; ``architecture``: the
    registered Whisper architecture (see :func:`export_packages`)."""
    parse_compute_units(compute_units)
    executor, stateful = split_backend(backend)
    if executor == "coreml":
        require_macos()  # before minutes of exporting
    options = dict(build_options or {})
    directory, scratch = packages_directory(weights, options)
    packages = export_packages(
        architecture,
        weights,
        size,
        precision,
        directory,
        target=STATEFUL_TARGET if stateful else DEFAULT_TARGET,
        compression=compression,
        stateful=stateful,
        build_options=options,
    )
    result = package_backend(
        packages,
        weights,
        precision,
        backend=executor,
        compute_units=compute_units,
        stateful=stateful,
        build_options=options,
    )
    result.name = backend
    result.scratch = scratch  # removed with the backend, not before (Core ML reads lazily)
    return result
