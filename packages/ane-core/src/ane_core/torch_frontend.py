"""A fix to coremltools' PyTorch frontend that our traced graphs need.

``aten::Int`` of a constant size-1 array: a traced graph that slices by a size read from a
tensor (``table[..., : x.shape[3]]``) converts ``x.shape[3]`` with coremltools' ``int``
converter, which calls ``int(array([n]))``. NumPy 2 refuses to turn a 1-D array into a
scalar, so coremltools 9.0 fails with "only 0-dimensional arrays can be converted to Python
scalars". That pattern is what lets a module trace from a short input and convert at its
full, declared shape (:attr:`ane_core.architecture.ExportableModel.trace_inputs`). The fix
takes the single element with ``.item()`` and leaves every other case to coremltools.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ane_core._coremltools import coremltools

_installed = False


def install() -> None:
    """Patch coremltools' scalar-cast converter once per process (idempotent)."""
    global _installed
    if _installed:
        return
    coremltools()
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.frontend.torch import ops

    original = ops._cast

    def cast_size_one_constants(context: Any, node: Any, dtype: type, dtype_name: str) -> None:
        x = ops._get_inputs(context, node, expected=1)[0]
        if x.can_be_folded_to_const() and np.ndim(x.val) > 0 and np.size(x.val) == 1:
            value = dtype(np.asarray(x.val).item())
            context.add(mb.const(val=value, name=node.name), node.name)
            return
        original(context, node, dtype, dtype_name)

    ops._cast = cast_size_one_constants
    _installed = True
