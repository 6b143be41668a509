"""Layer normalisation over the channel axis of the ANE layout ``(B, C, 1, S)``.

Why: in the channels-first layout of "Deploying Transformers on the Apple Neural Engine"
(principle 1: ``(B, C, 1, S)``, sequence on the padded last axis), the features to normalise sit
on axis 1, so ``nn.LayerNorm`` (which normalises trailing axes) cannot be used without two
transposes. :class:`LayerNormANE` normalises over axis 1 directly, written as the op sequence
that coremltools' ``fuse_layernorm_or_instancenorm`` pass (its "pattern 5", made for
ml-ane-transformers) recognises and fuses into one MIL ``layer_norm`` with ``axes=[1]``.

Semantics are exactly ``torch.nn.LayerNorm``::

    out = (x - mean) / sqrt(var + eps) * weight + bias        (biased variance)

Apple's reference ``ane_transformers.reference.layer_norm.LayerNormANE`` computes
``(x_hat + bias) * weight`` instead, which differs whenever ``bias != 0`` (their reference model port
divides the checkpoint bias by the weight on load to compensate). This module does not: an
``nn.LayerNorm`` state dict (``weight`` and ``bias``, both ``(C,)``) loads as is and gives the
same numbers.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .layout import static_size

__all__ = ["LayerNormANE"]

_FP16_TINY = 2.0**-24  # smallest positive float16 (subnormal)


def _is_tracing() -> bool:
    """True while TorchScript traces/scripts or dynamo/torch.export captures the graph."""
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return True
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and compiler.is_compiling())


class LayerNormANE(nn.Module):
    """``nn.LayerNorm(num_channels)`` over axis 1 of a ``(B, C, 1, S)`` tensor.

    The forward pass is ``mean(dim=1) -> sub -> mul (square) -> mean(dim=1) -> add eps ->
    rsqrt -> mul``, then ``* weight.view(1, C, 1, 1) + bias.view(1, C, 1, 1)``. Traced and
    converted with coremltools 9 (FP16 or FP32 program), the normalisation becomes one
    ``layer_norm`` op with ``axes=[1]`` and no gamma/beta. The affine part is not folded into
    it (the fusion pass only folds ml-ane-transformers' ``(x_hat + beta) * gamma`` order, which
    is not ``nn.LayerNorm``'s); coremltools' ``fuse_elementwise_to_batchnorm`` turns the
    ``mul`` + ``add`` into one ``batch_norm`` (mean 0, variance 1, its default epsilon 1e-5, i.e.
    an extra relative factor of ``1/sqrt(1 + 1e-5)``, far below float16 resolution); with the
    identity init (weight 1, bias 0) both ops are removed instead. There is no dtype cast
    anywhere, so an FP16 program has no ``cast`` op.

    Float16 in eager mode (CPU or GPU): with the plain formula the square ``(x - mean)**2``
    overflows float16 (max 65504) once ``|x - mean| >= 256``, which transformer residual
    streams do reach; the variance becomes ``inf`` and the output collapses to ``bias``. So for
    a float16 input, outside tracing, the deviations are first divided by their own max-abs
    ``s`` over the channels (exact in float16, clamped to at least ``2**-24``), using::

        (x - mean) / sqrt(var + eps) == z / sqrt(mean(z**2) + (sqrt(eps) / s)**2),  z = (x - mean) / s

    ``z`` lies in ``[-1, 1]``, so ``mean(z**2)`` can neither overflow nor lose the row to
    underflow; when ``(sqrt(eps) / s)**2`` overflows (``s < sqrt(eps) / 256``, 1.2e-5 for
    ``eps=1e-5``) the row's true normalised values are below ``1/256`` and come out as 0; a
    constant row gives 0 (then ``bias``), never NaN. This
    uses only float16 ops (``abs``, ``amax``, ``clamp_min``, ``div``): no cast. The only
    remaining limit is ``x - mean`` itself overflowing, i.e. inputs near float16's range.
    Float32 (and every traced graph, whatever its dtype) uses the plain formula, so float32
    results are exactly those of the ``nn.LayerNorm`` formula and the traced graph holds the
    fusable pattern; on the device the fused ``layer_norm`` op does its own reduction. Trace in
    float32 and let coremltools lower to FP16: coremltools 9 does not fuse the pattern of a
    float16 trace (it converts, cast-free, to the separate ``reduce_mean``/``sub``/``mul``/
    ``rsqrt`` ops). Pass ``fp16_rescale=False`` to use the plain formula in float16 eager too.

    Args:
        num_channels: ``C``, the size of axis 1.
        eps: added to the variance, as in ``nn.LayerNorm``. Note that float16 cannot represent
            values below ``2**-24`` (``nn.LayerNorm``'s ``1e-12`` in some checkpoints becomes 0).
        elementwise_affine: learnable ``weight`` (init 1) and ``bias`` (init 0), both ``(C,)``.
        fp16_rescale: use the overflow-safe formula for float16 inputs in eager mode.
    """

    def __init__(
        self,
        num_channels: int,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        fp16_rescale: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self.fp16_rescale = fp16_rescale
        if elementwise_affine:
            self.weight = nn.Parameter(torch.ones(num_channels, device=device, dtype=dtype))
            self.bias = nn.Parameter(torch.zeros(num_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """Weight to ones, bias to zeros (``nn.LayerNorm``'s init)."""
        if self.elementwise_affine:
            nn.init.ones_(self.weight)
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` of shape ``(B, C, 1, S)`` over ``C``; same shape out."""
        if x.dim() != 4 or static_size(x, 1) != self.num_channels:
            raise ValueError(
                f"LayerNormANE({self.num_channels}) expects (B, {self.num_channels}, 1, S), "
                f"got {tuple(x.shape)}"
            )
        mean = x.mean(dim=1, keepdim=True)
        zero_mean = x - mean
        if self.fp16_rescale and x.dtype == torch.float16 and not _is_tracing():
            out = self._normalize_fp16(zero_mean)
        else:
            var = (zero_mean * zero_mean).mean(dim=1, keepdim=True)
            out = zero_mean * (var + self.eps).rsqrt()
        if self.elementwise_affine:
            c = self.num_channels
            out = out * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        return out

    def _normalize_fp16(self, zero_mean: Tensor) -> Tensor:
        """Overflow-safe ``zero_mean / sqrt(mean(zero_mean**2) + eps)`` in float16 (no casts)."""
        scale = zero_mean.abs().amax(dim=1, keepdim=True).clamp_min(_FP16_TINY)
        z = zero_mean / scale
        var = (z * z).mean(dim=1, keepdim=True)
        eps_ratio = math.sqrt(self.eps) / scale
        return z * (var + eps_ratio * eps_ratio).rsqrt()

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
