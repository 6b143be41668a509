"""One comparison per output: running modules and packages, and the rows they make."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from ane_core.datatypes import ExportableModel
from ane_core.errors import UsageError
from ane_core.metrics import max_abs_error, psnr
from ane_core.targets import Precision


@dataclass
class ParityRow:
    """One comparison: an output of one model on one input, against the reference."""

    component: str
    case: str
    output: str
    model: str
    precision: str
    psnr_db: float
    max_abs_error: float
    min_psnr_db: float | None
    """``None``: reported only (compressed rows without a compressed floor)."""
    compression: str = "none"
    package_bytes: int | None = None
    """Size of the package on disk; ``None`` for PyTorch modules."""

    @property
    def passed(self) -> bool:
        return self.min_psnr_db is None or self.psnr_db >= self.min_psnr_db

    def as_json(self) -> dict[str, Any]:
        row = asdict(self)
        row["psnr_db"] = None if math.isinf(self.psnr_db) else self.psnr_db  # identical
        row["passed"] = self.passed
        return row


def module_outputs(module: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> tuple:
    """A module's outputs as a tuple, in FP32, without autograd."""
    with torch.no_grad():
        out = module.eval()(*inputs)
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def package_feed(
    model: ExportableModel, inputs: Sequence[torch.Tensor], precision: Precision
) -> dict[str, np.ndarray]:
    """Inputs by the package's names, in the dtypes the export declared."""
    return {
        spec.name: tensor.detach().numpy().astype(spec.numpy_dtype(precision))
        for spec, tensor in zip(model.inputs, inputs, strict=True)
    }


def package_outputs(
    program: Any, model: ExportableModel, inputs: Sequence[torch.Tensor], precision: Precision
) -> tuple:
    """Run a loaded package once (fresh state if it is stateful); outputs in spec order."""
    feed = package_feed(model, inputs, precision)
    result = program(feed, state=program.new_state()) if program.states else program(feed)
    return tuple(
        torch.from_numpy(np.asarray(result[spec.name], dtype=np.float32)) for spec in model.outputs
    )


def compare(
    reference: Sequence[torch.Tensor],
    outputs: Sequence[torch.Tensor],
    names: Sequence[str],
    **row: Any,
) -> list[ParityRow]:
    """One row per output; shapes must already match the reference's."""
    if len(reference) != len(outputs):
        raise UsageError(
            f"{row['model']} gives {len(outputs)} outputs, the reference {len(reference)}.",
            "Fix the architecture's to_reference_layout.",
        )
    rows = []
    for index, (ref, out) in enumerate(zip(reference, outputs, strict=True)):
        name = names[index] if index < len(names) else f"output{index}"
        if tuple(ref.shape) != tuple(out.shape):
            raise UsageError(
                f"{row['model']} output {name!r} has shape {tuple(out.shape)}, the reference "
                f"{tuple(ref.shape)}.",
                "Fix the architecture's to_reference_layout.",
            )
        rows.append(
            ParityRow(
                output=name, psnr_db=psnr(ref, out), max_abs_error=max_abs_error(ref, out), **row
            )
        )
    return rows
