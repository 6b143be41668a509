"""The data types that an architecture, the export pipeline and the metadata share.

Why one low module: ``Architecture`` (what a plugin implements), ``build_options`` (parsing
its options), ``metadata`` and ``package_items`` (what a package records and carries) all
speak about the same few values. Defined here, below all of them, each imports them
downwards, and none has to import another to name a type. Everything here is data with small
helpers; nothing here runs a model or imports coremltools.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch

from ane_core.errors import UsageError

METADATA_PREFIX = "ane."
"""Every key ``ane`` writes into a package's user-defined metadata starts with this."""


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output as Core ML will see it.

    ``kind`` "float" tensors follow the export precision (float16 in an FP16 model, so no
    cast is inserted at the model's edge); "int" tensors are int32.
    """

    name: str
    shape: tuple[int, ...]
    description: str
    kind: Literal["float", "int"] = "float"


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
