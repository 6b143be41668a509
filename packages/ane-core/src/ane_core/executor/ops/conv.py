"""``conv`` (coremltools ``conv.py``): 1-D to 3-D, strides, dilations, groups, pad types.

Evaluated as im2col: a strided window view of the padded input contracted with the kernel by
``np.tensordot`` (one BLAS call per group), so a Whisper stem or a 1x1-conv projection costs
one matmul.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ane_core.executor.ops._util import conv_pads
from ane_core.executor.registry import register


@register("conv")
def conv(x, weight, bias=None, strides=None, pad_type="valid", pad=None, dilations=None, groups=1):
    """``x (N, C, *spatial)`` with ``weight (O, C/groups, *kernel)`` -> ``(N, O, *out)``."""
    x, weight = np.asarray(x), np.asarray(weight)
    n_spatial = x.ndim - 2
    kernel = weight.shape[2:]
    strides = [1] * n_spatial if strides is None else [int(s) for s in np.ravel(strides)]
    dilations = [1] * n_spatial if dilations is None else [int(d) for d in np.ravel(dilations)]
    pads = conv_pads(str(pad_type), pad, x.shape[2:], kernel, strides, dilations)
    pointwise = all(k == 1 for k in kernel) and all(s == 1 for s in strides)
    if pointwise and int(groups) == 1 and all(p == (0, 0) for p in pads):
        # A Linear as 1x1 conv (the ANE layout's projections): one plain matmul.
        n, c = x.shape[:2]
        w = weight.reshape(weight.shape[0], c)
        columns = x.reshape(n, c, -1)
        # BLAS is fastest with the long axis as rows: W @ x for a decoder step's few
        # positions, (x^T @ W^T)^T for an encoder's thousands.
        if columns.shape[-1] <= 64:
            y = np.matmul(w, columns)
        else:
            y = np.stack([(sample.T @ w.T).T for sample in columns])
        y = y.reshape((n, weight.shape[0]) + x.shape[2:])
        return y if bias is None else y + np.asarray(bias).reshape((-1,) + (1,) * n_spatial)
    if any(p != (0, 0) for p in pads):
        x = np.pad(x, [(0, 0), (0, 0), *pads])
    spatial_axes = tuple(range(2, x.ndim))
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    windows = sliding_window_view(x, extent, axis=spatial_axes)
    select = (
        (slice(None), slice(None))
        + tuple(slice(None, None, s) for s in strides)
        + tuple(slice(None, None, d) for d in dilations)
    )
    windows = windows[select]  # (N, C, *out, *kernel)
    groups = int(groups)
    c_per_group = weight.shape[1]
    o_per_group = weight.shape[0] // groups
    kernel_axes_w = tuple(range(1, weight.ndim))
    kernel_axes_x = (1,) + tuple(range(2 + n_spatial, 2 + 2 * n_spatial))
    outputs = []
    for g in range(groups):
        part = windows[:, g * c_per_group : (g + 1) * c_per_group]
        w = weight[g * o_per_group : (g + 1) * o_per_group]
        outputs.append(np.tensordot(part, w, axes=(kernel_axes_x, kernel_axes_w)))
    y = outputs[0] if groups == 1 else np.concatenate(outputs, axis=-1)  # (N, *out, O)
    y = np.moveaxis(y, -1, 1)
    if bias is not None:
        y = y + np.asarray(bias).reshape((-1,) + (1,) * n_spatial)
    return y
