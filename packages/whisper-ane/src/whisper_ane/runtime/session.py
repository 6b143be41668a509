"""One window's decoding state on a static key/value cache: :class:`DecoderSession`.

It owns the fixed-size cache of one window: it feeds one token at a time to a decoder
component (PyTorch module or exported package, see :mod:`whisper_ane.runtime.backends`),
writes the returned key/value slice into the cache and moves the one-hot update mask and the
padding mask one position on. Each session owns its cache (or, for a stateful decoder, its
state), so several sequences of one window (best-of-N sampling) can run side by side.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ane_core.layers import MASK_VALUE

from whisper_ane.export.decoder import ALIGNMENT_OUTPUT
from whisper_ane.export.host_embedding import EMBEDDING_INPUT, embedding_row
from whisper_ane.runtime.backends import ComponentRunner

CROSS_NAMES = ("cross_k", "cross_v")
"""The cross-attention K/V, a decoder's inputs or (``--cross-kv state``) its states."""


def position_axis(cache_shape: Sequence[int], update_shape: Sequence[int]) -> int:
    """The cache axis that holds positions: the only one where cache and update differ."""
    axes = [i for i, (c, u) in enumerate(zip(cache_shape, update_shape, strict=True)) if c != u]
    if len(axes) != 1 or update_shape[axes[0]] != 1:
        raise ValueError(f"cache {tuple(cache_shape)} and update {tuple(update_shape)} do not fit")
    return axes[0]


def logits_names(decoder: ComponentRunner) -> list[str]:
    """``logits`` or the chunks ``logits_0..N``, in vocabulary order."""
    names = [s.name for s in decoder.outputs if s.name == "logits" or s.name.startswith("logits_")]
    if not names:
        raise ValueError("the decoder has no logits output")
    return sorted(names, key=lambda n: int(n.rpartition("_")[2]) if n != "logits" else 0)


@dataclass
class DecodeStats:
    """Where the time went, summed over a run (wall clock, seconds)."""

    encoder_seconds: float = 0.0
    cross_kv_seconds: float = 0.0
    decoder_seconds: float = 0.0
    decoder_steps: int = 0
    windows: int = 0

    def as_dict(self) -> dict[str, float | int]:
        per_token = self.decoder_seconds / self.decoder_steps if self.decoder_steps else 0.0
        return {
            "encoder_s": round(self.encoder_seconds, 4),
            "cross_kv_s": round(self.cross_kv_seconds, 4),
            "decoder_s": round(self.decoder_seconds, 4),
            "decoder_steps": self.decoder_steps,
            "decoder_ms_per_token": round(1000 * per_token, 3),
            "encoder_runs": self.windows,
        }


class DecoderSession:
    """One window's decoding state: a static key/value cache and the position masks.

    ``step(token)`` runs the decoder for the next position and returns the float32 logits
    of the whole vocabulary. Caches are allocated once (zeros, the decoder's float dtype) and
    written in place: one ``(n_layer, C)`` slice per step, nothing else copied.
    A stateful decoder (no ``key_cache`` input) holds the caches itself; the session then
    only resets its state and moves the masks. A decoder built with ``--embedding host``
    (a ``token_embedding`` input) gets the token's row of the runner's
    :meth:`~whisper_ane.runtime.backends.ComponentRunner.token_table`: this is the one place
    where every runner's token ids become rows.
    """

    def __init__(
        self,
        decoder: ComponentRunner,
        cross: Mapping[str, np.ndarray],
        stats: DecodeStats | None = None,
    ) -> None:
        self.decoder = decoder
        self.stats = stats if stats is not None else DecodeStats()
        # A stateful decoder (``--stateful`` export) keeps the caches inside: no cache input.
        self.stateful = not any(spec.name == "key_cache" for spec in decoder.inputs)
        dtype = decoder.float_dtype
        self.logits_names = logits_names(decoder)
        self.has_alignment = any(spec.name == ALIGNMENT_OUTPUT for spec in decoder.outputs)
        self.alignment_weights: np.ndarray | None = None
        """The last step's alignment-head cross-attention weights ``(H_a, n_audio_ctx)``
        (float32), when the decoder was built with alignment heads."""
        self.position = 0
        self.state = decoder.new_state()  # this sequence's own (stateful decoders)
        cross_inputs = {name: np.asarray(cross[name], dtype=dtype) for name in CROSS_NAMES}
        for name in CROSS_NAMES:  # a decoder that keeps them as state: written once, here
            if name in decoder.state_names:
                decoder.write_state(self.state, name, cross_inputs.pop(name))
        caches: dict[str, np.ndarray] = {}
        if self.stateful:
            self.n_ctx = decoder.input_spec("kv_cache_update_mask").shape[-1]
        else:
            cache = decoder.input_spec("key_cache").shape
            self.axis = position_axis(cache, decoder.output_spec("key_cache_update").shape)
            self.n_ctx = cache[self.axis]
            caches = {name: np.zeros(cache, dtype=dtype) for name in ("key_cache", "value_cache")}
        names = {spec.name for spec in decoder.inputs}
        self.table = decoder.token_table() if EMBEDDING_INPUT in names else None
        token_input = (
            {EMBEDDING_INPUT: np.zeros(decoder.input_spec(EMBEDDING_INPUT).shape, dtype=dtype)}
            if self.table is not None
            else {"token": np.zeros(1, dtype=np.int32)}
        )
        self.inputs: dict[str, np.ndarray] = {
            **token_input,
            **caches,
            "kv_cache_update_mask": np.zeros((1, self.n_ctx), dtype=dtype),
            "key_padding_mask": np.full((1, self.n_ctx), MASK_VALUE, dtype=dtype),
            **cross_inputs,
        }

    def step(self, token: int) -> np.ndarray:
        """Decode ``token`` at the next position; returns ``(n_vocab,)`` float32 logits."""
        p = self.position
        if p >= self.n_ctx:
            raise ValueError(f"the decoder context holds {self.n_ctx} tokens; no room for more")
        inputs = self.inputs
        update = inputs["kv_cache_update_mask"]
        if p:
            update[0, p - 1] = 0
        update[0, p] = 1
        inputs["key_padding_mask"][0, p] = 0
        if self.table is None:
            inputs["token"][0] = token
        else:
            row = inputs[EMBEDDING_INPUT]
            row[...] = embedding_row(self.table, token, row.shape)
        start = time.perf_counter()
        outputs = self.decoder(inputs, state=self.state)
        self.stats.decoder_seconds += time.perf_counter() - start
        self.stats.decoder_steps += 1
        if not self.stateful:
            index: list[Any] = [slice(None)] * inputs["key_cache"].ndim
            index[self.axis] = p
            for name in ("key", "value"):
                inputs[f"{name}_cache"][tuple(index)] = outputs[f"{name}_cache_update"].take(
                    0, axis=self.axis
                )
        self.position = p + 1
        if self.has_alignment:  # (1, H_a, 1, n_audio_ctx)
            self.alignment_weights = outputs[ALIGNMENT_OUTPUT][0, :, 0, :].astype(np.float32)
        logits = [outputs[name].reshape(-1) for name in self.logits_names]
        return np.concatenate(logits).astype(np.float32, copy=False)
