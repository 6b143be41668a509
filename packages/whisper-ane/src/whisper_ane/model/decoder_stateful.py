"""The ANE decoder with its self-attention cache inside the model, as Core ML state.

Why: the external-cache decoder (:mod:`whisper_ane.model.decoder`) passes both caches
``(n_layer, C, 1, n_ctx)`` in at every token and returns the new slice for the caller to
write back. Core ML state (macOS15/iOS18) keeps them in the model's own memory instead, so
per token only the token, the two position masks and the cross-attention K/V cross the call
boundary. The computation is the same: the cache is blended with this step's keys and values
through the one-hot update mask (``cache * (1 - m) + new * m``, shapes static), attention
reads the blend, and the blend is written back whole by slice assignment, which coremltools
converts to ``read_state`` / ``slice_update`` / ``write_state``.

Core ML states hold float16 only, so the buffers are float16 by default, also when the
model computes in float32: an FP32 export then casts on read and write, and stores what
this module stores. ``cache_dtype=torch.float32`` keeps a float32 cache for eager PyTorch
checks (not exportable).
"""

from __future__ import annotations

import torch
from torch import Tensor

from whisper_ane.model.decoder import AlignmentHeads, TextDecoderANE

STATE_NAMES = ("key_cache", "value_cache")
"""The buffers (and Core ML state names) of the self-attention keys and values."""


class TextDecoderANEStateful(TextDecoderANE):
    """One decoding step; the caches are buffers ``key_cache``/``value_cache`` updated in place.

    ``forward(token, kv_cache_update_mask, key_padding_mask, cross_k, cross_v)`` returns the
    logits chunks (and, with ``alignment_heads``, the alignment weights) only. Call
    :meth:`reset_cache` before a new sequence (masked positions are never read, so this only
    matters for reproducibility; it also allocates the buffers after a meta-device build).
    """

    def __init__(
        self,
        n_vocab: int,
        n_ctx: int,
        n_state: int,
        n_head: int,
        n_layer: int,
        *,
        split_logits: bool = True,
        alignment_heads: AlignmentHeads = (),
        host_embedding: bool = False,
        cache_dtype: torch.dtype = torch.float16,
    ) -> None:
        super().__init__(
            n_vocab,
            n_ctx,
            n_state,
            n_head,
            n_layer,
            split_logits=split_logits,
            alignment_heads=alignment_heads,
            host_embedding=host_embedding,
        )
        self.cache_shape = (n_layer, n_state, 1, n_ctx)
        self.cache_dtype = cache_dtype
        for name in STATE_NAMES:  # not persistent: no state-dict entry, weights load strictly
            self.register_buffer(name, torch.zeros(self.cache_shape, dtype=cache_dtype), False)

    def reset_cache(self) -> None:
        """Fresh zero caches on the CPU (replaces meta-device buffers too)."""
        for name in STATE_NAMES:
            setattr(self, name, torch.zeros(self.cache_shape, dtype=self.cache_dtype))

    def forward(  # type: ignore[override]
        self,
        token: Tensor,
        kv_cache_update_mask: Tensor,
        key_padding_mask: Tensor,
        cross_k: Tensor,
        cross_v: Tensor,
    ) -> tuple[Tensor, ...]:
        tables = self.vocabulary_tables()
        x, update, keep = self.embed(token, kv_cache_update_mask, tables)
        x, steps = self.run_blocks(
            x, self.key_cache, self.value_cache, update, keep, key_padding_mask, cross_k, cross_v
        )
        self.key_cache[:, :, :, :] = torch.cat([s.keys for s in steps], dim=0).to(self.cache_dtype)
        self.value_cache[:, :, :, :] = torch.cat([s.values for s in steps], 0).to(self.cache_dtype)
        return (*self.project(x, tables), *self.alignment_outputs(steps))


CROSS_STATE_NAMES = ("cross_k", "cross_v")
"""The buffers (and Core ML state names) of the cross-attention keys and values."""


class TextDecoderANEStatefulCrossKV(TextDecoderANEStateful):
    """:class:`TextDecoderANEStateful` that also keeps the cross-attention keys and values as
    state: ``forward(token, kv_cache_update_mask, key_padding_mask)``.

    Why: the cross K/V ``(n_layer, C, 1, n_audio_ctx)`` depend only on the 30 s window, yet
    the other decoders take them as inputs at every token (tiny 9.2 MB, large ~246 MB in
    FP16). As states, the app writes them once per window, before the window's first token
    (on macOS 15 / iOS 18 through ``MLState.withMultiArray(for:)``, with the ``cross_kv``
    model's outputs), and every call only reads them: the model never writes these states.
    Per token, only the token and the two masks cross the call boundary.
    """

    def __init__(self, *args, n_audio_ctx: int = 1500, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        n_layer, n_state = self.cache_shape[:2]
        self.cross_shape = (n_layer, n_state, 1, n_audio_ctx)
        for name in CROSS_STATE_NAMES:
            self.register_buffer(
                name, torch.zeros(self.cross_shape, dtype=self.cache_dtype), persistent=False
            )

    def reset_cache(self) -> None:
        """Fresh zero caches, cross K/V included, on the CPU."""
        super().reset_cache()
        for name in CROSS_STATE_NAMES:
            setattr(self, name, torch.zeros(self.cross_shape, dtype=self.cache_dtype))

    def forward(  # type: ignore[override]
        self, token: Tensor, kv_cache_update_mask: Tensor, key_padding_mask: Tensor
    ) -> tuple[Tensor, ...]:
        dtype = self.positional_embedding.dtype
        return super().forward(
            token,
            kv_cache_update_mask,
            key_padding_mask,
            self.cross_k.to(dtype),
            self.cross_v.to(dtype),
        )
