"""Output projections split into chunks of at most 16384 channels.

Why: the ANE rejects (falls back to GPU/CPU for) tensors with any dimension larger than 16384
("Deploying Transformers on the Apple Neural Engine"; the same limit applies to conv output
channels). A vocabulary projection such as ``(B, 51866, 1, S)`` therefore cannot be one 1x1
convolution on the ANE. :class:`ChunkedLinearConv2d` keeps a single ``(out, in, 1, 1)`` weight
(so a ``nn.Linear`` or tied embedding state dict loads unchanged) but computes the output as
several 1x1 convolutions over slices of the output channels, each at most ``max_channels``.
In a traced graph each slice of the constant weight folds into its own ``const``, giving one
``conv`` per chunk. Returning the chunks as a tuple keeps every model output under the limit;
concatenating them is offered for comparisons and for back ends without the limit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layout import static_size
from .linear import LinearConv2d

__all__ = ["ANE_MAX_DIM", "ChunkedLinearConv2d", "chunk_sizes", "chunked_linear_conv2d"]

ANE_MAX_DIM = 16384
"""Largest size of any tensor dimension the ANE accepts."""


def chunk_sizes(total: int, max_channels: int = ANE_MAX_DIM) -> list[int]:
    """Split ``total`` into the fewest chunks of at most ``max_channels``, as equal as possible.

    The first ``total % n`` chunks are one larger than the rest, e.g.
    ``chunk_sizes(51866) == [12967, 12967, 12966, 12966]``.
    """
    if total <= 0 or max_channels <= 0:
        raise ValueError(f"total and max_channels must be positive, got {total}, {max_channels}")
    n = math.ceil(total / max_channels)
    base, extra = divmod(total, n)
    return [base + 1] * extra + [base] * (n - extra)


def chunked_linear_conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    max_channels: int = ANE_MAX_DIM,
    concat: bool = False,
    sizes: list[int] | None = None,
) -> tuple[Tensor, ...] | Tensor:
    """Apply a Linear/1x1-conv projection to ``x`` ``(B, in, 1, S)`` in output-channel chunks.

    Args:
        x: input in the ANE layout ``(B, in, 1, S)``.
        weight: ``(out, in)`` (e.g. a Linear weight or a tied embedding table, viewed, not
            copied) or ``(out, in, 1, 1)``.
        bias: optional ``(out,)``.
        max_channels: largest chunk, default the ANE limit 16384.
        concat: return one ``(B, out, 1, S)`` tensor instead of the tuple of chunks.
        sizes: explicit chunk sizes (summing to ``out``) instead of :func:`chunk_sizes`.

    Returns:
        A tuple of ``(B, n_i, 1, S)`` tensors with ``n_i`` from :func:`chunk_sizes`, or their
        concatenation on axis 1.
    """
    if weight.dim() == 2:
        weight = weight[:, :, None, None]
    if weight.dim() != 4 or (static_size(weight, 2), static_size(weight, 3)) != (1, 1):
        raise ValueError(f"weight must be (out, in) or (out, in, 1, 1), got {tuple(weight.shape)}")
    if sizes is None:
        sizes = chunk_sizes(static_size(weight, 0), max_channels)
    weights = weight.split(sizes, dim=0)
    biases = bias.split(sizes, dim=0) if bias is not None else [None] * len(sizes)
    outputs = tuple(F.conv2d(x, w, b) for w, b in zip(weights, biases, strict=True))
    return torch.cat(outputs, dim=1) if concat else outputs


class ChunkedLinearConv2d(LinearConv2d):
    """:class:`LinearConv2d` whose output channels are computed in chunks of <= ``max_channels``.

    Holds one ``weight`` ``(out, in, 1, 1)`` and ``bias`` ``(out,)``, exactly like
    :class:`LinearConv2d` (an ``nn.Linear`` state dict loads as is), but ``forward`` returns a
    tuple of ``len(self.chunk_sizes)`` outputs ``(B, n_i, 1, S)``, or their concatenation if
    ``concat=True``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        max_channels: int = ANE_MAX_DIM,
        concat: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.max_channels = max_channels
        self.concat = concat
        self.chunk_sizes = chunk_sizes(out_features, max_channels)

    @classmethod
    def from_linear(
        cls, linear: nn.Linear, max_channels: int = ANE_MAX_DIM, concat: bool = False
    ) -> ChunkedLinearConv2d:
        """Share ``linear``'s weights (a view, no copy), see :meth:`LinearConv2d.from_linear`."""
        conv = super().from_linear(linear)
        conv.max_channels = max_channels
        conv.concat = concat
        conv.chunk_sizes = chunk_sizes(linear.out_features, max_channels)
        return conv

    def forward(self, x: Tensor) -> tuple[Tensor, ...] | Tensor:  # type: ignore[override]
        return chunked_linear_conv2d(
            x, self.weight, self.bias, concat=self.concat, sizes=self.chunk_sizes
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, chunk_sizes={self.chunk_sizes}, concat={self.concat}"
