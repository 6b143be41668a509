"""Post-conversion weight compression: 8-bit linear quantization and k-means palettization.

Why: phones ship Whisper at 4-8 bits per weight; weights dominate both download size and
the memory traffic of the Neural Engine. Compression is applied to the converted ML program
(``coremltools.optimize.coreml``), not to the PyTorch model, so it is the same for every
architecture and every variant, and the saved program states it in its ops
(``constexpr_affine_dequantize`` / ``constexpr_blockwise_shift_scale`` for int8,
``constexpr_lut_to_dense`` for palettes), which the reference executor runs.

Granularity follows what the deployment target can express: per-grouped-channel palettes
(one palette per group of output channels, far more accurate at 4 bits) need iOS18 /
macOS15 ops; older targets get one palette per tensor. 8-bit linear quantization is per
output channel (``int8``) or per tensor (``int8-tensor``) on every target.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from ane_core._coremltools import coremltools
from ane_core.errors import UsageError

PALETTE_GROUP_SIZE = 16
"""Output channels that share one palette under per-grouped-channel palettization."""

WEIGHT_THRESHOLD = 2048
"""Tensors with fewer elements (biases, norms) stay uncompressed: they cost nothing."""

_GROUPED_MIN = {"macOS": 15, "iOS": 18, "tvOS": 18, "watchOS": 11}


@dataclass(frozen=True)
class Compression:
    """One ``--compress`` setting."""

    name: str
    """The CLI spelling: ``none``, ``int8``, ``int8-tensor``, ``palettize8`` ..."""
    suffix: str
    """Appended to package names (``-int8``, ``-pal4``); empty for none."""
    kind: str
    """``none``, ``linear`` or ``palettize``."""
    nbits: int
    granularity: str
    """``per_channel`` / ``per_tensor`` (linear); palettes choose theirs from the target."""

    @property
    def enabled(self) -> bool:
        return self.kind != "none"


COMPRESSIONS: dict[str, Compression] = {
    c.name: c
    for c in (
        Compression("none", "", "none", 16, "none"),
        Compression("int8", "-int8", "linear", 8, "per_channel"),
        Compression("int8-tensor", "-int8-tensor", "linear", 8, "per_tensor"),
        Compression("palettize8", "-pal8", "palettize", 8, "target"),
        Compression("palettize6", "-pal6", "palettize", 6, "target"),
        Compression("palettize4", "-pal4", "palettize", 4, "target"),
    )
}
NO_COMPRESSION = COMPRESSIONS["none"]


def parse_compression(value: str | Compression | None) -> Compression:
    """``--compress`` text -> :class:`Compression`; anything unknown is a one-line UsageError."""
    if value is None:
        return NO_COMPRESSION
    if isinstance(value, Compression):
        return value
    try:
        return COMPRESSIONS[value.lower()]
    except KeyError:
        raise UsageError(
            f"unknown --compress {value!r}.", f"Use one of: {', '.join(COMPRESSIONS)}."
        ) from None


def supports_grouped_palettes(target_name: str) -> bool:
    """True for iOS18 / macOS15 and later, where palettes may be per group of channels."""
    for family, minimum in _GROUPED_MIN.items():
        if target_name.startswith(family) and target_name[len(family) :].isdigit():
            return int(target_name[len(family) :]) >= minimum
    return False


def palette_granularity(target_name: str) -> str:
    """The palettization granularity a target can run: grouped per channel, else per tensor."""
    return "per_grouped_channel" if supports_grouped_palettes(target_name) else "per_tensor"


def describe(compression: Compression, target_name: str) -> str:
    """What was done, for model metadata: ``palettize4 (kmeans, per_grouped_channel/16)``."""
    if compression.kind == "linear":
        return f"{compression.name} (linear_symmetric, {compression.granularity})"
    if compression.kind == "palettize":
        granularity = palette_granularity(target_name)
        if granularity == "per_grouped_channel":
            granularity += (
                f"/{PALETTE_GROUP_SIZE}, per_tensor where {PALETTE_GROUP_SIZE} does not divide"
            )
        return f"{compression.name} (kmeans, {granularity})"
    return "none"


def compress_model(mlmodel: Any, compression: Compression, target_name: str) -> Any:
    """A compressed copy of a converted ``MLModel`` (the model itself when ``none``)."""
    if not compression.enabled:
        return mlmodel
    optimize = coremltools().optimize.coreml
    if compression.kind == "linear":
        op_config = optimize.OpLinearQuantizerConfig(
            mode="linear_symmetric",
            dtype="int8",
            granularity=compression.granularity,
            weight_threshold=WEIGHT_THRESHOLD,
        )
        config = optimize.OptimizationConfig(global_config=op_config)
        return optimize.linear_quantize_weights(mlmodel, config=config)
    if importlib.util.find_spec("sklearn") is None:
        raise UsageError(
            f"--compress {compression.name} clusters weights with scikit-learn, which is not installed.",
            "pip install 'ane-core[compress]' (scikit-learn and kmeans1d).",
        )
    granularity = palette_granularity(target_name)
    if granularity == "per_grouped_channel":
        mlmodel = _palettize(mlmodel, compression.nbits, granularity, PALETTE_GROUP_SIZE)
        # coremltools skips (with a warning) a tensor whose channel count the group size does
        # not divide: Whisper's 51864..51866-token embedding, the largest decoder tensor. Those
        # get one palette per tensor; weights already palettized are no longer consts, so
        # this pass leaves them alone.
    return _palettize(mlmodel, compression.nbits, "per_tensor")


def _palettize(mlmodel: Any, nbits: int, granularity: str, group_size: int | None = None) -> Any:
    optimize = coremltools().optimize.coreml
    grouped = {} if group_size is None else {"group_size": group_size}
    op_config = optimize.OpPalettizerConfig(
        mode="kmeans",
        nbits=nbits,
        granularity=granularity,
        weight_threshold=WEIGHT_THRESHOLD,
        **grouped,
    )
    config = optimize.OptimizationConfig(global_config=op_config)
    return optimize.palettize_weights(mlmodel, config=config)
