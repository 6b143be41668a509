"""Dimensions read from a checkpoint, checked before anything is built from them.

Why: a checkpoint's dimensions come from a file from elsewhere (a ``.pt``'s ``dims``, a
transformers ``config.json``, a CTranslate2 header), and openai-whisper builds from them
without asking: a width of 9 fails an ``assert`` in its sinusoids, 0 heads divides by zero,
and a text context of 10^5 positions allocates a 10^5 x 10^5 causal mask (40 GB) before a
single weight is compared. So dimensions are checked in two steps, each one line naming the
checkpoint: :func:`check_dims` (whole, positive, consistent, within the bounds below) as soon
as they are read, and :func:`check_dims_match_tensors` (every width, length and layer count
backed by a tensor that is really there) before any model is built from them.
"""

from __future__ import annotations

import dataclasses
import re

import torch
from ane_core.errors import WeightsError
from whisper.model import ModelDimensions

from whisper_ane.weights.lazy import tensor_shape

MAX_TEXT_CTX = 4096
"""Text positions read at most: every Whisper model has 448, and a model's causal mask holds
the square of this many floats (64 MiB here)."""
MAX_LAYERS = 256
"""Layers per side read at most (Whisper large has 32): names are expanded per layer before
any tensor is matched."""

_FIX = "The checkpoint is damaged or not a Whisper model; pass another one."


def check_dims(dims: ModelDimensions, where: object) -> None:
    """Refuse dimensions no Whisper model has: a field that is not a positive whole number,
    an odd width, heads that do not divide their width, too many layers or text positions."""
    for field in dataclasses.fields(dims):
        value = getattr(dims, field.name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise WeightsError(
                f"checkpoint {where} declares {field.name}={value!r}, not a positive whole number.",
                _FIX,
            )
    for side in ("audio", "text"):
        width, heads = getattr(dims, f"n_{side}_state"), getattr(dims, f"n_{side}_head")
        if width % 2:  # whisper.model.sinusoids asserts an even number of channels
            raise WeightsError(
                f"checkpoint {where} declares an odd {side} width {width}; Whisper's is even.",
                _FIX,
            )
        if width % heads:
            raise WeightsError(
                f"checkpoint {where} declares {heads} {side} heads for width {width}, which "
                "they do not divide.",
                _FIX,
            )
        layers = getattr(dims, f"n_{side}_layer")
        if layers > MAX_LAYERS:
            raise WeightsError(
                f"checkpoint {where} declares {layers} {side} layers (at most {MAX_LAYERS} are "
                "read; Whisper large has 32).",
                _FIX,
            )
    if dims.n_text_ctx > MAX_TEXT_CTX:
        raise WeightsError(
            f"checkpoint {where} declares {dims.n_text_ctx:,} text positions (every Whisper "
            f"model has 448; at most {MAX_TEXT_CTX} are read).",
            _FIX,
        )


def _layer_count(state: dict[str, torch.Tensor], side: str) -> int | None:
    found = {int(m.group(1)) for n in state if (m := re.match(rf"{side}\.blocks\.(\d+)\.", n))}
    return len(found) if found == set(range(len(found))) else None


def check_dims_match_tensors(
    dims: ModelDimensions, state: dict[str, torch.Tensor], where: object
) -> None:
    """Refuse dimensions that the tensors in ``state`` (openai-whisper names) do not carry:
    then every later allocation made from ``dims`` is backed by bytes of the checkpoint."""
    expected = {
        "encoder.conv1.weight": (dims.n_audio_state, dims.n_mels, 3),
        "encoder.positional_embedding": (dims.n_audio_ctx, dims.n_audio_state),
        "decoder.token_embedding.weight": (dims.n_vocab, dims.n_text_state),
        "decoder.positional_embedding": (dims.n_text_ctx, dims.n_text_state),
    }
    for name, shape in expected.items():
        if name not in state:
            raise WeightsError(f"checkpoint {where} lacks {name}.", _FIX)
        if tensor_shape(state, name) != shape:
            raise WeightsError(
                f"checkpoint {where}: {name} has shape {tensor_shape(state, name)}, but its "
                f"dimensions say {shape}.",
                _FIX,
            )
    for side, short in (("encoder", "audio"), ("decoder", "text")):
        declared = getattr(dims, f"n_{short}_layer")
        found = _layer_count(state, side)
        if found != declared:
            has = "layers numbered with gaps" if found is None else f"{found} layers"
            raise WeightsError(
                f"checkpoint {where} declares {declared} {side} layers but holds {has}.", _FIX
            )
