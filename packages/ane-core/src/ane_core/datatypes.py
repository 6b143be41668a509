"""The data types that an architecture, the export pipeline and the metadata share.

Why one low module: ``Architecture`` (what a plugin implements), ``build_options`` (parsing
its options), ``metadata`` and ``package_items`` (what a package records and carries) all
speak about the same few values. Defined here, below all of them, each imports them
downwards, and none has to import another to name a type. Everything here is data with small
helpers; nothing here runs a model or imports coremltools.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch

from ane_core.errors import UsageError

if TYPE_CHECKING:
    from ane_core.targets import Precision

METADATA_PREFIX = "ane."
"""Every key ``ane`` writes into a package's user-defined metadata starts with this."""


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output as Core ML will see it.

    ``kind`` "float" tensors follow the export precision (float16 in an FP16 model, so no
    cast is inserted at the model's edge); "float32" tensors are float32 whatever the
    precision, for an app whose contract fixes the dtype (whisper.cpp copies float32
    out of its encoder): an FP16 program then computes in float16 and coremltools adds one
    ``cast`` at that edge; "int" tensors are int32.
    """

    name: str
    shape: tuple[int, ...]
    description: str
    kind: Literal["float", "float32", "int"] = "float"

    def numpy_dtype(self, precision: Precision) -> np.dtype:
        """The dtype this tensor crosses the model's edge in, exported at ``precision``."""
        if self.kind == "int":
            return np.dtype(np.int32)
        if self.kind == "float32":
            return np.dtype(np.float32)
        return np.dtype(precision.numpy_dtype)


@dataclass
class ExportableModel:
    """A built component, ready to trace: module, example inputs and I/O descriptions."""

    module: torch.nn.Module
    inputs: Sequence[TensorSpec]
    outputs: Sequence[TensorSpec]
    example_inputs: tuple[torch.Tensor, ...]
    metadata: dict[str, str] = field(default_factory=dict)
    states: Sequence[TensorSpec] = ()
    """Tensors the model keeps between calls as Core ML state (e.g. a decoder's key/value
    cache), so the caller never passes them in or out. Each must be a float16 buffer of
    ``module`` registered under the spec's name and updated in place by slice assignment
    (``self.cache[:, :, :, :] = new``, coremltools' stateful conversion). Why float16: Core
    ML states hold float16 only, also in FP32 programs. Needs a macOS15/iOS18 target."""
    trace_inputs: tuple[torch.Tensor, ...] | None = None
    """Short stand-ins for ``example_inputs``, used only to trace (``None``: trace with
    ``example_inputs``). Why: tracing runs the module once, and for an encoder over a 30 s
    window that forward pass is most of the trace time (1.1 TFLOPs, about 10 s, for Whisper
    medium). A module whose graph never reads its sequence length, which is how the
    channels-first ANE layers are written (they read channel counts only), traces the same
    graph from a few frames; the conversion still uses the shapes declared in ``inputs``.
    :func:`ane_core.convert.to_coreml` refuses the result if an output shape then differs
    from ``outputs``, which catches a module that baked the short length into a shape. A
    module that used the length as a number (a mean divided by a Python int) would keep its
    shapes and compute wrong values, so set this only for modules whose graph never reads the
    length, and test that the short trace converts to the full trace's program."""

    def __post_init__(self) -> None:
        if len(self.inputs) != len(self.example_inputs):
            raise ValueError(
                f"{len(self.inputs)} input specs but {len(self.example_inputs)} example inputs"
            )
        if self.trace_inputs is not None and len(self.trace_inputs) != len(self.inputs):
            raise ValueError(
                f"{len(self.inputs)} input specs but {len(self.trace_inputs)} trace inputs"
            )


@dataclass
class LatencyCase:
    """One timed inference for ``ane bench``: ``call()`` runs it once.

    Why a callable and not a module plus inputs: what one representative inference is
    differs per architecture (an encoder's one window, a decoder's single step with a cache
    filled to some position, which needs more than positional tensors), and ane-bench must
    time it without knowing the model. ``call`` must hold everything it needs (module,
    inputs, cache) so building the case is not part of the time.
    """

    name: str
    call: Callable[[], Any]


@dataclass
class ParityCase:
    """One named input set for ``ane parity``: the tensors a variant's module takes.

    Why named: parity reports say which real input (an audio file, say) a number belongs to.
    """

    name: str
    inputs: tuple[torch.Tensor, ...]


@runtime_checkable
class WeightsInfo(Protocol):
    """Where loaded weights came from; recorded in every exported model's metadata."""

    source: str
    checkpoint_path: str | None
    sha256: str | None


@dataclass(frozen=True)
class BuildOption:
    """One option of :meth:`Architecture.build`: ``name`` is the keyword (``seq_len``), the
    command line spells it ``--seq-len VALUE``; ``type`` turns the text into the value."""

    name: str
    type: Callable[[str], Any] = str
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] = ()
    expected: str = ""
    """What a valid value looks like, for the error message (default: ``type``'s name)."""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def convert(self, architecture: str, text: str) -> Any:
        """The typed value of ``text``, or a one-line error saying what is expected."""
        if self.choices and text not in self.choices:
            raise UsageError(
                f"{architecture} {self.flag} got {text!r}.",
                f"Use one of: {', '.join(self.choices)}.",
            )
        try:
            return self.type(text)
        except (TypeError, ValueError):
            expected = self.expected or "of type " + getattr(self.type, "__name__", "value")
            raise UsageError(
                f"{architecture} {self.flag} got {text!r}, which is not {expected}.",
                self.help or None,
            ) from None

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for ``ane list``."""
        return {"flag": self.flag, "default": self.default, "help": self.help}


ITEM_AUTHOR = "ane"
"""The author every item is registered under; its files land in ``Data/ane/``."""


@dataclass(frozen=True)
class PackageItem:
    """One file to ship inside a package: an array (stored as ``.npy``) or raw bytes.

    ``name`` is a plain file name (``token_embeddings.npy``); ``description`` says what the
    file is and how to use it (it is written to ``Manifest.json`` and the metadata).
    """

    name: str
    content: np.ndarray | bytes
    description: str

    def __post_init__(self) -> None:
        if not self.name or Path(self.name).name != self.name or self.name.startswith("."):
            raise ValueError(f"package item name {self.name!r} must be a plain file name")
        if isinstance(self.content, np.ndarray) and not self.name.endswith(".npy"):
            raise ValueError(f"array item {self.name!r} must be named *.npy")

    @property
    def relative_path(self) -> str:
        """Where the file sits inside the package."""
        return f"Data/{ITEM_AUTHOR}/{self.name}"

    def to_bytes(self) -> bytes:
        if isinstance(self.content, np.ndarray):
            buffer = io.BytesIO()
            np.save(buffer, self.content, allow_pickle=False)
            return buffer.getvalue()
        return bytes(self.content)

    def metadata(self) -> dict[str, str]:
        """``ane.item.NAME.*`` metadata keys that name this file for an app."""
        key = f"{METADATA_PREFIX}item.{self.name}."
        meta = {key + "path": self.relative_path, key + "description": self.description}
        if isinstance(self.content, np.ndarray):
            meta[key + "shape"] = str(tuple(self.content.shape))
            meta[key + "dtype"] = str(self.content.dtype)
        return meta


NATIVE_LAYOUT = "native"
"""The layout every architecture has: its components under ane's own I/O contract."""


@dataclass(frozen=True)
class Layout:
    """A way to lay an export out on disk for one app (``ane export ARCH --layout NAME``).

    Why a layout and not more components: an app (whisper.cpp, WhisperKit) fixes the file
    names, the folder, the I/O names, shapes and dtypes it loads, and what else must sit
    beside the models; a layout is that contract, written once by the plugin. ``native`` is
    ane's own (the components one by one, :func:`ane_core.export.export_component`).
    """

    name: str
    description: str
    precisions: tuple[str, ...] = ("fp32", "fp16")
    """``--precision`` values the layout accepts, in the order ``ane parity`` checks them."""
    default_precision: str = "fp16"
    precision_note: str = ""
    """What ``--precision`` means for this layout, when it is not simply compute and I/O."""

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for ``ane list``."""
        return {
            "name": self.name,
            "description": self.description,
            "precisions": list(self.precisions),
            "default_precision": self.default_precision,
            "precision_note": self.precision_note,
        }


NATIVE = Layout(NATIVE_LAYOUT, "ane's own I/O contract, one package per component")
"""The default layout of every architecture (see :meth:`Architecture.layouts`)."""


@dataclass
class LayoutPackage:
    """One model of a layout: where it goes and how to build it and its reference.

    ``build(weights)`` gives the module to export, with the app's I/O names, shapes and
    dtypes; ``reference(weights)`` a module with the *same* inputs and outputs computed the
    original way (the stock model), which ``ane parity --layout`` compares the export with.
    Callables, not modules, so that a plan can be made (and its paths checked) before any
    weights load.
    """

    name: str
    """Short name in reports and metadata (``TextDecoder``)."""
    path: str
    """Where the ``.mlpackage`` goes, relative to the plan's :attr:`LayoutPlan.root`."""
    build: Callable[[Any], ExportableModel]
    reference: Callable[[Any], ExportableModel]


@dataclass
class LayoutPlan:
    """Everything one layout export writes, from :meth:`Architecture.layout_plan`.

    ``root`` None: the single package is written straight into the output directory (and no
    file beside it); otherwise a folder ``root`` holds every package and file and is
    published whole, so a failure leaves nothing half-written.
    """

    layout: str
    packages: Sequence[LayoutPackage]
    root: str | None = None
    files: Callable[[Any], Mapping[str, bytes]] = lambda weights: {}
    """Extra files by path relative to ``root`` (``config.json``), made from the weights."""
    notes: Callable[[Any], Sequence[str]] = lambda weights: ()
    """Lines ``ane export`` prints after writing (a file the source could not provide...)."""

    def __post_init__(self) -> None:
        if not self.packages:
            raise ValueError(f"layout {self.layout!r} plans no package")
        if self.root is None and len(self.packages) != 1:
            raise ValueError(f"layout {self.layout!r} has several packages but no root folder")
        paths = [package.path for package in self.packages]
        if len(set(paths)) != len(paths) or not all(p.endswith(".mlpackage") for p in paths):
            raise ValueError(f"layout {self.layout!r} package paths must be distinct .mlpackage")

    @property
    def outputs(self) -> list[str]:
        """What appears in the output directory: the root folder, or the one package."""
        return [self.root] if self.root is not None else [self.packages[0].path]
