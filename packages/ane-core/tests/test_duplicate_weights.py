"""The ``duplicate-weights`` rule: a tensor stored twice (same bytes, a reshape, a transpose)
is found by reading the weight file; a blob several ops share is not a duplicate."""

from __future__ import annotations

import coremltools as ct
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ane_core.inspect import inspect_package
from ane_core.inspect.duplicates import MIN_DUPLICATE_BYTES


class TableTwice(nn.Module):
    """A tied embedding read as a lookup table and, folded into new constants, as a 4-D conv
    weight (a reshape) and as a transposed matrix: three copies of one table."""

    def __init__(self, rows: int, transpose: bool) -> None:
        super().__init__()
        self.table = nn.Embedding(rows, 64)
        self.transpose = transpose

    def forward(self, token: torch.Tensor, x: torch.Tensor):
        row = self.table(token)[:, :, None, None]
        logits = F.conv2d(row + x, self.table.weight[:, :, None, None])
        if not self.transpose:
            return logits
        return logits, torch.matmul(self.table.weight.t(), logits[0, :, 0, :])


def _package(tmp_path, module: nn.Module):
    example = (torch.tensor([3], dtype=torch.int32), torch.randn(1, 64, 1, 1))
    mlmodel = ct.convert(
        torch.jit.trace(module.eval(), example),
        inputs=[
            ct.TensorType(name="token", shape=(1,), dtype=np.int32),
            ct.TensorType(name="x", shape=(1, 64, 1, 1)),
        ],
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.macOS13,
    )
    path = tmp_path / "model.mlpackage"
    mlmodel.save(str(path))
    return inspect_package(path, with_compute_plan=False)


def test_a_reshaped_and_a_transposed_copy_are_found(tmp_path):
    report = _package(tmp_path, TableTwice(1024, transpose=True))  # FP16: 128 KiB per copy
    found = [f for f in report.findings if f.rule == "duplicate-weights"]
    details = [f.detail for f in found]
    assert len(found) == 2, details
    reshaped = next(d for d in details if "stores the same bytes as" in d)
    transposed = next(d for d in details if "stores the transpose of" in d)
    assert "[1024, 64, 1, 1]" in reshaped and "[64, 1024]" in transposed
    assert all(f.data["bytes"] == 1024 * 64 * 2 for f in found)
    assert "duplicated weights" in report.summary_line()


def test_small_copies_are_not_worth_a_finding(tmp_path):
    rows = MIN_DUPLICATE_BYTES // (64 * 2) - 1  # just under the threshold in FP16
    report = _package(tmp_path, TableTwice(rows, transpose=False))
    assert report.count("duplicate-weights") == 0


def test_a_blob_read_by_several_ops_is_shared_not_duplicated(tmp_path):
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(1024, 64, 1, 1))

        def forward(self, token, x):
            return F.conv2d(x, self.weight), F.conv2d(x * 2, self.weight)

    report = _package(tmp_path, Shared())
    assert report.count("duplicate-weights") == 0
