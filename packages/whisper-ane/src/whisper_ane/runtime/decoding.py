"""Greedy Whisper decoding on a static key/value cache, with openai-whisper's own loop.

Why this split: everything that decides *which* token comes next (tokenizer, sot sequence,
prompts, language detection, ``SuppressBlank``, ``SuppressTokens``, ``ApplyTimestampRules``,
greedy choice, no-speech probability, 30 s windows with ``seek``) is openai-whisper's code,
used unchanged, so the tokens can only differ where the logits do. What is ours is the
per-token step:

* :class:`DecoderSession` owns the fixed-size cache of one window: it feeds one token at a
  time to a decoder component (PyTorch module or exported package, see
  :mod:`whisper_ane.runtime.backends`), writes the returned key/value slice into the cache and moves
  the one-hot update mask and the padding mask one position on.
* :class:`StaticCacheInference` is a ``whisper.decoding.Inference`` (whisper's extension point
  for the forward pass) that runs a :class:`DecoderSession`.
* :class:`StaticCacheWhisper` stands in for ``whisper.model.Whisper`` where
  ``whisper.transcribe`` and ``whisper.detect_language`` use a model:
  ``dims``, ``device``, ``encoder(mel)``, ``logits(tokens, features)``, ``decode`` and
  ``detect_language``. Audio features cross that interface in whisper's ``(B, 1500, C)``
  layout (whisper tells mel from features by that shape); the backend's own layout is
  restored before its ``cross_kv`` component runs.

Limits: one sequence per window (greedy or sampled, no beam search or best-of-N), no word
timestamps (they hook the cross-attention of torch modules).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import whisper
import whisper.decoding
import whisper.model
from ane_core.errors import UsageError
from ane_core.layers import MASK_VALUE
from whisper.decoding import DecodingOptions, DecodingResult, DecodingTask, Inference

from whisper_ane.export.decoder import ALIGNMENT_OUTPUT
from whisper_ane.runtime.backends import ComponentRunner, WhisperBackend


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
    only resets its state and moves the masks.
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
        caches: dict[str, np.ndarray] = {}
        if self.stateful:
            self.n_ctx = decoder.input_spec("kv_cache_update_mask").shape[-1]
            decoder.reset_state()  # one live session per stateful decoder
        else:
            cache = decoder.input_spec("key_cache").shape
            self.axis = position_axis(cache, decoder.output_spec("key_cache_update").shape)
            self.n_ctx = cache[self.axis]
            caches = {name: np.zeros(cache, dtype=dtype) for name in ("key_cache", "value_cache")}
        self.inputs: dict[str, np.ndarray] = {
            "token": np.zeros(1, dtype=np.int32),
            **caches,
            "kv_cache_update_mask": np.zeros((1, self.n_ctx), dtype=dtype),
            "key_padding_mask": np.full((1, self.n_ctx), MASK_VALUE, dtype=dtype),
            **{name: np.asarray(cross[name], dtype=dtype) for name in ("cross_k", "cross_v")},
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
        inputs["token"][0] = token
        start = time.perf_counter()
        outputs = self.decoder(inputs)
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


class StaticCacheInference(Inference):
    """whisper's ``Inference`` on a :class:`DecoderSession`: feeds the tokens not yet cached.

    The first call of a window feeds the whole initial sequence (whisper needs the logits at
    the sot position for the no-speech probability), later calls the one new token.
    """

    def __init__(self, model: StaticCacheWhisper) -> None:
        self.model = model
        self.session: DecoderSession | None = None

    def logits(self, tokens: torch.Tensor, audio_features: torch.Tensor) -> torch.Tensor:
        if tokens.shape[0] != 1:
            raise ValueError("the static-cache decoder decodes one sequence at a time")
        if self.session is None:
            self.session = self.model.new_session(audio_features)
        pending = tokens[0, self.session.position :].tolist()
        return self.model.run_tokens(self.session, pending)

    def rearrange_kv_cache(self, source_indices: list[int]) -> None:
        if list(source_indices) != list(range(len(source_indices))):
            raise NotImplementedError("beam search is not supported with the static cache")

    def cleanup_caching(self) -> None:
        self.session = None


class _NoHookedBlocks:
    """What ``DecodingTask.__init__`` reads from ``model.decoder``.

    Its constructor builds whisper's ``PyTorchInference``, which lists the key/value modules
    of ``model.decoder.blocks`` to hook; this model has no torch blocks to hook (its cache is
    static), so there are none, and :meth:`StaticCacheWhisper.decode` swaps in
    :class:`StaticCacheInference` before anything runs.
    """

    blocks: tuple = ()


class StaticCacheWhisper:
    """A :class:`WhisperBackend` behind the model interface of openai-whisper's decoding.

    Pass it to ``whisper.transcribe`` (or use :func:`transcribe`) and
    ``whisper.detect_language`` as you would a ``whisper.model.Whisper``, and call its
    ``decode`` method (not the module function ``whisper.decode``, which always builds
    whisper's hook-based ``PyTorchInference``).
    """

    is_multilingual = whisper.model.Whisper.is_multilingual
    num_languages = whisper.model.Whisper.num_languages
    detect_language = whisper.decoding.detect_language

    def __init__(self, backend: WhisperBackend) -> None:
        self.backend = backend
        self.dims = backend.dims
        self.device = torch.device("cpu")
        self.decoder = _NoHookedBlocks()
        self.stats = DecodeStats()
        self._native_features_shape = backend.encoder.output_spec("encoder_output").shape
        self._last_features: torch.Tensor | None = None
        self._last_cross: dict[str, np.ndarray] = {}

    def encoder(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, 3000)`` log-mel to ``(B, n_audio_ctx, n_audio_state)`` features."""
        mel_shape = self.backend.encoder.input_spec("mel").shape
        features = []
        for one in mel.reshape(-1, *mel.shape[-2:]):
            start = time.perf_counter()
            out = self.backend.encoder({"mel": one.float().numpy().reshape(mel_shape)})
            self.stats.encoder_seconds += time.perf_counter() - start
            self.stats.windows += 1
            features.append(self._to_whisper_layout(out["encoder_output"]))
        return torch.from_numpy(np.concatenate(features)).to(mel.dtype)

    def _to_whisper_layout(self, native: np.ndarray) -> np.ndarray:
        if len(self._native_features_shape) == 4:  # channels-first (1, C, 1, S)
            return native[:, :, 0, :].transpose(0, 2, 1).astype(np.float32)
        return native.astype(np.float32)

    def _to_native_layout(self, features: torch.Tensor) -> np.ndarray:
        x = features.float().numpy()
        if len(self._native_features_shape) == 4:
            x = x.transpose(0, 2, 1)[:, :, None, :]
        return x.reshape(self._native_features_shape)

    def cross_attention(self, features: torch.Tensor) -> dict[str, np.ndarray]:
        """Cross-attention keys/values of one window (kept for the last features seen)."""
        if features.shape[0] != 1:
            raise ValueError("the static-cache decoder decodes one window at a time")
        if features is not self._last_features:
            start = time.perf_counter()
            self._last_cross = self.backend.cross_kv(
                {"encoder_output": self._to_native_layout(features)}
            )
            self.stats.cross_kv_seconds += time.perf_counter() - start
            self._last_features = features
        return self._last_cross

    def new_session(self, features: torch.Tensor) -> DecoderSession:
        return DecoderSession(self.backend.decoder, self.cross_attention(features), self.stats)

    def run_tokens(self, session: DecoderSession, tokens: Sequence[int]) -> torch.Tensor:
        """Feed ``tokens`` in order; their logits as a ``(1, len(tokens), n_vocab)`` tensor."""
        return torch.from_numpy(np.stack([session.step(t) for t in tokens]))[None]

    def logits(self, tokens: torch.Tensor, audio_features: torch.Tensor) -> torch.Tensor:
        """``Whisper.logits``: all positions of ``tokens`` (from position 0), one window."""
        if tokens.shape[0] != 1:
            raise ValueError("the static-cache decoder decodes one sequence at a time")
        return self.run_tokens(self.new_session(audio_features), tokens[0].tolist())

    @torch.no_grad()
    def decode(
        self, mel: torch.Tensor, options: DecodingOptions | None = None, **kwargs: Any
    ) -> DecodingResult | list[DecodingResult]:
        """``whisper.decode`` for this model: whisper's ``DecodingTask`` on the static cache."""
        options = options or DecodingOptions()
        if kwargs:
            options = replace(options, **kwargs)
        if options.beam_size is not None or (options.best_of or 1) > 1:
            raise UsageError(
                "beam search and best-of-N need several sequences per window.",
                "Decode greedily (no beam_size / best_of).",
            )
        single = mel.ndim == 2
        batch = mel[None] if single else mel
        results = []
        for item in batch:
            task = DecodingTask(self, options)
            task.inference = StaticCacheInference(self)
            results.extend(task.run(item[None]))
        return results[0] if single else results


def transcribe(
    model: StaticCacheWhisper, audio: str | np.ndarray | torch.Tensor, **options: Any
) -> dict[str, Any]:
    """``whisper.transcribe`` (30 s windows, ``seek``, prompts) on ``model``.

    Defaults to greedy decoding at temperature 0 in float32 (``fp16=False``: the backend
    has its own precision); any other option is whisper's.
    """
    if options.get("word_timestamps"):
        raise UsageError(
            "word timestamps are not available with the static-cache decoder.",
            "Use segment timestamps.",
        )
    options.setdefault("temperature", 0.0)
    options.setdefault("fp16", False)
    return whisper.transcribe(model, audio, **options)


def load_mel(path: str, n_mels: int) -> torch.Tensor:
    """One 30 s window of ``path`` as whisper computes it (``(n_mels, 3000)``)."""
    audio = whisper.pad_or_trim(whisper.load_audio(path))
    return whisper.log_mel_spectrogram(audio, n_mels=n_mels)
