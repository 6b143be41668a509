"""What an architecture plugin provides: the :class:`Architecture` interface.

Why an object and not more hooks: the CLI and the conversion pipeline need the same handful
of answers for every architecture (which sizes, which components, how to load weights, how
to build the stock and the ANE module, which inputs to trace with). Grouping them on one
registered object keeps the hook surface to a single ``register_architectures`` hook and
lets ane-core and ane-bench stay ignorant of any particular model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ane_core.datatypes import (  # re-exported: plugins import them from here
    NATIVE,
    NATIVE_LAYOUT,
    BuildOption,
    ExportableModel,
    LatencyCase,
    Layout,
    LayoutPackage,
    LayoutPlan,
    PackageItem,
    ParityCase,
    TensorSpec,
    WeightsInfo,
)
from ane_core.errors import UsageError

if TYPE_CHECKING:
    from ane_core.targets import Precision

__all__ = [
    "NATIVE",
    "NATIVE_LAYOUT",
    "VARIANTS",
    "Architecture",
    "ExportableModel",
    "LatencyCase",
    "Layout",
    "LayoutPackage",
    "LayoutPlan",
    "ParityCase",
    "TensorSpec",
    "WeightsInfo",
]

VARIANTS: tuple[str, ...] = ("ane", "stock")
"""``ane``: rewritten for the Neural Engine; ``stock``: the original module, for comparison."""


class Architecture(ABC):
    """An architecture plugin's entry: subclass it and register an instance.

    Subclasses set :attr:`name` and :attr:`description` and implement the abstract methods.
    ``weights`` objects are the plugin's own; ane-core only reads the :class:`WeightsInfo`
    attributes from them.
    """

    name: str
    description: str = ""
    variants: tuple[str, ...] = VARIANTS

    @abstractmethod
    def sizes(self) -> Sequence[str]:
        """Size names users can pass to ``--size`` (empty if sizes come from the checkpoint)."""

    @abstractmethod
    def components(self) -> Sequence[str]:
        """Separately exported parts (for Whisper: encoder, decoder); ``all`` means every one."""

    def default_size(self) -> str | None:
        """The size used when ``--size`` is not given; ``None`` makes ``--size`` required."""
        return None

    @abstractmethod
    def load_weights(self, size: str | None, checkpoint: str | None, seed: int = 0) -> WeightsInfo:
        """Load weights for ``size`` from ``checkpoint`` (a path, ``"random"``, or ``None``
        for the architecture's default source). Raise :class:`ane_core.errors.AneError` with a
        one-line message for anything the user can fix."""

    def stateful_components(self, variant: str) -> Sequence[str]:
        """Components of ``variant`` that ``--stateful`` exports with their caches kept inside
        the model as Core ML state: :meth:`build` gets ``stateful=True`` for them and returns
        an :class:`ExportableModel` with :attr:`~ExportableModel.states`. Default: none."""
        return ()

    def package_tags(
        self, component: str, variant: str, *, stateful: bool = False, **options: Any
    ) -> Sequence[str]:
        """Words added to the package name of ``component`` built with ``options`` (the build
        options, ``stateful`` as :func:`~ane_core.export.export_component` applies it), for
        builds whose inputs or outputs differ from the default build's, so the two never
        share a file name. Default: none."""
        return ()

    def build_options(self) -> Sequence[BuildOption]:
        """Architecture-specific keyword options of :meth:`build` and :meth:`reference`
        (``ane export ARCH --seq-len 64``); see :mod:`ane_core.build_options`."""
        return ()

    @abstractmethod
    def build(self, component: str, variant: str, weights: Any, **options: Any) -> ExportableModel:
        """Build ``component`` in ``variant`` (one of :attr:`variants`) from loaded weights."""

    def reference(self, component: str, weights: Any, **options: Any) -> ExportableModel:
        """The model that parity checks compare against: by default the stock build."""
        return self.build(component, "stock", weights, **options)

    def package_items(
        self,
        component: str,
        variant: str,
        weights: Any,
        precision: Precision,
        **options: Any,
    ) -> Sequence[PackageItem]:
        """Files to ship inside the exported package of ``component`` beside the model
        (:class:`ane_core.package_items.PackageItem`: an array saved as ``.npy``, or bytes).

        Why: data an app needs to call the model but that should not be part of its program,
        such as a token-embedding table the app indexes itself instead of the model running a
        ``gather`` off the Neural Engine. ``ane export`` writes them into the staged package
        (``Data/ane/NAME``, registered in ``Manifest.json``) before publishing it, and names
        each in the metadata (``ane.item.NAME.path``, ``.shape``, ``.dtype``,
        ``.description``). Arrays should already be in the export's precision. ``options``
        are the build options. Default: none.
        """
        return ()

    def release_weights(self, weights: Any, remaining: Sequence[str]) -> None:
        """Drop from ``weights`` the tensors that none of the ``remaining`` components needs.

        Why: exporting several components in one process (``--component all``) would keep
        every exported component's weights alive to the end, so the last conversion's peak
        memory would include them all. Called after each component is exported. Default:
        keep everything.
        """
        return None

    def latency_cases(
        self, component: str, variant: str, weights: Any, **options: Any
    ) -> list[LatencyCase]:
        """The PyTorch inferences ``ane bench`` times for ``component`` in ``variant``.

        Default: one forward pass of the build on its example inputs. Override to time what
        matters for the model (e.g. a decoder's step at several cache positions).
        """
        model = self.build(component, variant, weights, **options)
        module, inputs = model.module.eval(), model.example_inputs
        return [LatencyCase("forward", lambda: module(*inputs))]

    def check_input_files(self, files: Sequence[str | Path]) -> None:
        """Refuse unusable input files (``--audio``/``--input``) with a one-line
        :class:`~ane_core.errors.UsageError`, before any weights are loaded.

        Default: each must be an existing, non-empty file. Override to also check the
        content (e.g. that audio decodes and is not silent), calling this first.
        """
        for file in files:
            path = Path(file)
            if not path.is_file():
                raise UsageError(f"input file {path} does not exist.", "Pass a path to a file.")
            if path.stat().st_size == 0:
                raise UsageError(f"input file {path} is empty.", "Pass a file with content.")

    def parity_inputs(
        self,
        component: str,
        variant: str,
        weights: Any,
        files: Sequence[str] = (),
        **options: Any,
    ) -> list[ParityCase]:
        """Named real inputs that ``ane parity`` feeds ``component`` in ``variant``.

        ``files`` are what the user passed (``--input``/``--audio``); what they mean is the
        architecture's business. Every variant must get the same cases in the same order,
        holding the same data in its own layout (the reference takes the ``stock`` variant's
        inputs), so outputs compare element-wise after :meth:`to_reference_layout`.
        Default: one case, ``example``, the build's example inputs (``files`` ignored);
        override when those differ between variants or when files should be used.
        """
        model = self.build(component, variant, weights, **options)
        return [ParityCase("example", tuple(model.example_inputs))]

    def to_reference_layout(
        self, component: str, variant: str, outputs: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, ...]:
        """``variant``'s outputs (PyTorch module or exported package) in the reference's
        layout and order, e.g. ANE ``(1, C, 1, S)`` to stock ``(1, S, C)``. Default: as is."""
        return tuple(outputs)

    def task_outputs(
        self,
        weights: Any,
        packages: Mapping[str, Any],
        files: Sequence[str],
        precision: Precision,
        **options: Any,
    ) -> dict[str, str] | None:
        """What the model's whole task makes of each input file with the exported
        ``packages`` (every component's path, by component name, exported at ``precision``
        with the build ``options``), run by the reference executor: e.g. a transcript per
        audio file.

        Why: PSNR says how far a compressed package's tensors moved, not whether the answer a
        user sees changed; ``ane parity --compress`` compares these per setting with the
        uncompressed package's. Default ``None``: not applicable to this architecture.
        """
        return None

    def layouts(self) -> Sequence[Layout]:
        """The layouts ``--layout`` accepts, ``native`` first (see :class:`Layout`).

        Default: only ``native``, the components under ane's own I/O contract. An
        architecture that can be dropped into an app adds that app's layout and implements
        :meth:`layout_plan`.
        """
        return (NATIVE,)

    def layout_plan(
        self,
        layout: str,
        *,
        size: str | None,
        name: str | None,
        checkpoint: str | None,
        **options: Any,
    ) -> LayoutPlan:
        """What ``--layout layout`` writes (any layout but ``native``): its packages, their
        references, the folder and the files beside them (see :class:`LayoutPlan`).

        Called before the weights load, so that every path is checked first: ``name`` is
        ``--name`` (None: the plugin's default, e.g. the size), ``checkpoint`` the weight
        source as given; ``options`` are the build options. Default: no layout but native.
        """
        raise UsageError(
            f"{self.name} has no --layout {layout!r}.",
            f"Use one of: {', '.join(item.name for item in self.layouts())}.",
        )

    def layout_parity_inputs(
        self,
        layout: str,
        package: str,
        weights: Any,
        files: Sequence[str] = (),
        **options: Any,
    ) -> list[ParityCase]:
        """Named real inputs for the package ``package`` of ``layout``, which ``ane parity
        --layout`` feeds both the package and its reference (they share their I/O).

        Default: one case, the package build's example inputs (``files`` ignored).
        """
        plan = self.layout_plan(layout, size=None, name=None, checkpoint=None, **options)
        for item in plan.packages:
            if item.name == package:
                return [ParityCase("example", tuple(item.build(weights).example_inputs))]
        raise UsageError(f"{self.name} --layout {layout} has no package {package!r}.")

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for ``ane list``."""
        return {
            "name": self.name,
            "description": self.description,
            "sizes": list(self.sizes()),
            "components": list(self.components()),
            "variants": list(self.variants),
            "build_options": [option.describe() for option in self.build_options()],
            "stateful_components": {
                variant: list(self.stateful_components(variant)) for variant in self.variants
            },
            "layouts": [layout.describe() for layout in self.layouts()],
        }
