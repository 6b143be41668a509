"""Size table and seeded random weights.

Why: exporting a model only needs its shapes, so ``--weights random`` lets people (and CI,
which has no network) convert any Whisper size without a multi-gigabyte download. The size
table is also what a real checkpoint is checked against when ``--size`` is given; the
dimensions of real weights always come from the checkpoint itself.
"""

from __future__ import annotations

import hashlib

import torch
import whisper.model
from ane_core.errors import UsageError
from whisper.model import ModelDimensions

from whisper_ane.weights.lazy import LazyStateDict


def _dims(
    n_mels: int, n_vocab: int, width: int, heads: int, layers: int, text_layers: int | None = None
) -> ModelDimensions:
    """Whisper dimensions: every released size has 1500 audio and 448 text positions."""
    return ModelDimensions(
        n_mels=n_mels,
        n_audio_ctx=1500,
        n_audio_state=width,
        n_audio_head=heads,
        n_audio_layer=layers,
        n_vocab=n_vocab,
        n_text_ctx=448,
        n_text_state=width,
        n_text_head=heads,
        n_text_layer=layers if text_layers is None else text_layers,
    )


_EN, _MULTI, _V3 = 51864, 51865, 51866  # English-only, multilingual, large-v3 vocabularies

DIMENSIONS: dict[str, ModelDimensions] = {
    "tiny": _dims(80, _MULTI, 384, 6, 4),
    "tiny.en": _dims(80, _EN, 384, 6, 4),
    "base": _dims(80, _MULTI, 512, 8, 6),
    "base.en": _dims(80, _EN, 512, 8, 6),
    "small": _dims(80, _MULTI, 768, 12, 12),
    "small.en": _dims(80, _EN, 768, 12, 12),
    "medium": _dims(80, _MULTI, 1024, 16, 24),
    "medium.en": _dims(80, _EN, 1024, 16, 24),
    "large-v1": _dims(80, _MULTI, 1280, 20, 32),
    "large-v2": _dims(80, _MULTI, 1280, 20, 32),
    "large-v3": _dims(128, _V3, 1280, 20, 32),
    "large": _dims(128, _V3, 1280, 20, 32),  # openai-whisper's "large" is large-v3
    "large-v3-turbo": _dims(128, _V3, 1280, 20, 32, text_layers=4),
    "turbo": _dims(128, _V3, 1280, 20, 32, text_layers=4),
}
"""Dimensions of every size name openai-whisper knows (``whisper.available_models()``)."""

SIZES: tuple[str, ...] = tuple(DIMENSIONS)


def dims_for(size: str) -> ModelDimensions:
    """The table's dimensions for ``size``; an unknown name is a usage error listing the known ones."""
    try:
        return DIMENSIONS[size]
    except KeyError:
        raise UsageError(f"unknown --size {size!r}.", f"Use one of: {', '.join(SIZES)}.") from None


def meta_whisper(dims: ModelDimensions) -> whisper.model.Whisper:
    """``Whisper(dims)`` whose parameters live on the meta device (no memory), buffers real.

    Why: the expected state-dict names and shapes, and a model that adopts loaded tensors
    with ``load_state_dict(assign=True)``, without allocating a second copy of a large
    model. ``Whisper.__init__`` cannot run on the meta device (it calls ``to_sparse``), so
    a tiny real skeleton with the same layer and head counts and context lengths supplies
    the non-persistent buffers (causal mask, alignment heads), and the real-width encoder
    and decoder are built on the meta device and swapped in.
    """
    skeleton_dims = ModelDimensions(
        n_mels=1,
        n_audio_ctx=dims.n_audio_ctx,
        n_audio_state=2 * dims.n_audio_head,
        n_audio_head=dims.n_audio_head,
        n_audio_layer=dims.n_audio_layer,
        n_vocab=1,
        n_text_ctx=dims.n_text_ctx,
        n_text_state=2 * dims.n_text_head,
        n_text_head=dims.n_text_head,
        n_text_layer=dims.n_text_layer,
    )
    model = whisper.model.Whisper(skeleton_dims)
    persistent = set(model.state_dict())
    volatile = {name: buf for name, buf in model.named_buffers() if name not in persistent}
    with torch.device("meta"):
        model.encoder = whisper.model.AudioEncoder(
            dims.n_mels, dims.n_audio_ctx, dims.n_audio_state, dims.n_audio_head, dims.n_audio_layer
        )
        model.decoder = whisper.model.TextDecoder(
            dims.n_vocab, dims.n_text_ctx, dims.n_text_state, dims.n_text_head, dims.n_text_layer
        )
    model.dims = dims
    for name, buf in volatile.items():
        owner_name, _, attr = name.rpartition(".")
        owner = model.get_submodule(owner_name)
        if getattr(owner, attr).shape != buf.shape:  # a whisper release changed its buffers
            raise RuntimeError(f"buffer {name} depends on more than layer/head/context counts")
        owner.register_buffer(attr, buf, persistent=False)
    return model


def expected_shapes(dims: ModelDimensions) -> dict[str, tuple[int, ...]]:
    """State-dict names and shapes of ``whisper.model.Whisper(dims)``, computed without allocating."""
    return {name: tuple(t.shape) for name, t in meta_whisper(dims).state_dict().items()}


def random_tensor(
    name: str, shape: tuple[int, ...], seed: int, norm_weights: set[str]
) -> torch.Tensor:
    """The seeded float32 tensor ``name`` of a random Whisper: N(0, 0.02) weights, zero biases,
    LayerNorm weights of ones and the encoder's fixed sinusoids (activations stay in a
    realistic range for tracing and numeric checks). Each tensor has its own generator,
    seeded from ``seed`` and its name, so tensors can be made in any order, one component at
    a time, and are the same every time."""
    if name == "encoder.positional_embedding":
        return whisper.model.sinusoids(*shape).float()
    if name in norm_weights:
        return torch.ones(shape)
    if name.endswith(".bias"):
        return torch.zeros(shape)
    key = int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:8], "little")
    generator = torch.Generator().manual_seed(key)
    return torch.empty(shape).normal_(0.0, 0.02, generator=generator)


def random_state_dict(dims: ModelDimensions, seed: int) -> LazyStateDict:
    """Seeded random weights in openai-whisper names (see :func:`random_tensor`), made when
    first asked for (:class:`~whisper_ane.weights.lazy.LazyStateDict`)."""
    model = meta_whisper(dims)
    norm_weights = {
        f"{name}.weight"
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.LayerNorm)
    }
    shapes = {name: tuple(meta.shape) for name, meta in model.state_dict().items()}
    return LazyStateDict(
        shapes,
        lambda name: random_tensor(name, shapes[name], seed, norm_weights),
        f"random(seed={seed})",
    )
