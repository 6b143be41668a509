"""Parity metrics, as the ANE literature reports them."""

from __future__ import annotations

import math

import numpy as np


def _as_float64(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=np.float64)


def psnr(reference, test) -> float:
    """Peak signal-to-noise ratio in dB: ``20 * log10(max|ref| / RMSE)``.

    The measure Apple's ml-stable-diffusion and whisperkittools use (35 dB is their FP16
    floor). Identical tensors give ``inf``.
    """
    ref = _as_float64(reference)
    out = _as_float64(test)
    if ref.shape != out.shape:
        raise ValueError(f"shapes differ: {ref.shape} vs {out.shape}")
    rmse = math.sqrt(float(np.mean((ref - out) ** 2)))
    peak = float(np.max(np.abs(ref)))
    if rmse == 0.0:
        return math.inf
    return 20.0 * math.log10(peak / rmse)


def max_abs_error(reference, test) -> float:
    """Largest absolute element-wise difference."""
    return float(np.max(np.abs(_as_float64(reference) - _as_float64(test))))
