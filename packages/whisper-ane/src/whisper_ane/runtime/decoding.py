"""Whisper decoding on a static key/value cache, with openai-whisper's own loop.

Why this split: everything that decides *which* token comes next (tokenizer, sot sequence,
prompts, language detection, ``SuppressBlank``, ``SuppressTokens``, ``ApplyTimestampRules``,
greedy choice, no-speech probability, 30 s windows with ``seek``) is openai-whisper's code,
used unchanged, so the tokens can only differ where the logits do. What is ours is the
per-token step:

* :class:`~whisper_ane.runtime.session.DecoderSession` owns the fixed-size cache of one
  sequence of one window and feeds it one token at a time.
* :class:`StaticCacheInference` is a ``whisper.decoding.Inference`` (whisper's extension point
  for the forward pass) that runs one session per sequence (best-of-N sampling runs several).
* :class:`StaticCacheWhisper` stands in for ``whisper.model.Whisper`` where
  ``whisper.transcribe`` and ``whisper.detect_language`` use a model:
  ``dims``, ``device``, ``encoder(mel)``, ``logits(tokens, features)``, ``decode`` and
  ``detect_language``. Audio features cross that interface in whisper's ``(B, 1500, C)``
  layout (whisper tells mel from features by that shape); the backend's own layout is
  restored before its ``cross_kv`` component runs.

Word timestamps run whisper's own ``whisper.timing`` on the alignment weights the decoder
returns (see :mod:`whisper_ane.runtime.alignment_replay`). Limit: no beam search (a clear
error), since reordering static caches between beams is not built.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import whisper
import whisper.decoding
import whisper.model
from ane_core.errors import UsageError
from whisper.decoding import DecodingOptions, DecodingResult, DecodingTask, Inference

from whisper_ane.export.alignment_heads import parse_alignment_heads
from whisper_ane.model.decoder import AlignmentHeads
from whisper_ane.runtime.alignment_replay import TappedDecoder, fire_taps, replay
from whisper_ane.runtime.backends import WhisperBackend
from whisper_ane.runtime.session import (  # noqa: F401 (re-exported: the decoding API)
    DecoderSession,
    DecodeStats,
    logits_names,
    position_axis,
)
from whisper_ane.weights.source import alignment_mask


def beam_search_refused() -> UsageError:
    """Why no beam search: reordering the static caches between beams is not built
    (sampling with best_of needs none)."""
    return UsageError(
        "beam search (beam_size) is not supported by the static-cache backends.",
        "Leave beam_size unset: greedy decoding, or sampling with best_of.",
    )


def no_alignment_heads() -> UsageError:
    return UsageError(
        "word timestamps need the decoder's alignment_weights output, and this decoder was "
        "built without alignment heads.",
        "Build it with alignment heads (--alignment-heads auto, the default).",
    )


class StaticCacheInference(Inference):
    """whisper's ``Inference`` on :class:`DecoderSession`\\ s: feeds the tokens not yet cached.

    One session per sequence (best-of-N sampling decodes several), all reading the window's
    cross-attention K/V. The first call of a window feeds the whole initial sequence (whisper
    needs the logits at the sot position for the no-speech probability), later calls the one
    new token of each sequence.
    """

    def __init__(self, model: StaticCacheWhisper) -> None:
        self.model = model
        self.sessions: list[DecoderSession] = []

    def logits(self, tokens: torch.Tensor, audio_features: torch.Tensor) -> torch.Tensor:
        if not self.sessions:
            self.sessions = [self.model.new_session(audio_features) for _ in tokens]
        if len(self.sessions) != tokens.shape[0]:
            raise ValueError(f"{tokens.shape[0]} sequences for {len(self.sessions)} sessions")
        rows = [
            self.model.run_tokens(session, row[session.position :].tolist())[0]
            for session, row in zip(self.sessions, tokens, strict=True)
        ]
        return torch.stack(rows)

    def rearrange_kv_cache(self, source_indices: list[int]) -> None:
        if list(source_indices) != list(range(len(source_indices))):
            raise beam_search_refused()

    def cleanup_caching(self) -> None:
        self.sessions = []


class StaticCacheWhisper:
    """A :class:`WhisperBackend` behind the model interface of openai-whisper's decoding.

    Pass it to ``whisper.transcribe`` (or use :func:`transcribe`) and
    ``whisper.detect_language`` as you would a ``whisper.model.Whisper``, and call its
    ``decode`` method (not the module function ``whisper.decode``, which always builds
    whisper's hook-based ``PyTorchInference``). Word timestamps (``word_timestamps=True``) run
    whisper's own ``whisper.timing`` through :meth:`__call__` when the decoder was built with
    alignment heads (see :mod:`whisper_ane.runtime.alignment_replay`).
    """

    is_multilingual = whisper.model.Whisper.is_multilingual
    num_languages = whisper.model.Whisper.num_languages
    detect_language = whisper.decoding.detect_language

    def __init__(self, backend: WhisperBackend) -> None:
        self.backend = backend
        self.dims = backend.dims
        self.device = torch.device("cpu")
        self.decoder = TappedDecoder(self.dims.n_text_layer)
        self.stats = DecodeStats()
        # the decoder's metadata, as format_alignment_heads wrote it ("" for none)
        heads = backend.decoder.metadata.get("alignment_heads", "")
        self.heads: AlignmentHeads = tuple(parse_alignment_heads(heads)) if heads else ()
        if self.heads:  # what whisper.timing reads (Whisper's buffer of the same name)
            self.alignment_heads = alignment_mask(
                self.heads, self.dims.n_text_layer, self.dims.n_text_head
            )
        self._native_features_shape = backend.encoder.output_spec("encoder_output").shape
        self._last_mel: torch.Tensor | None = None
        self._last_mel_features: torch.Tensor | None = None
        self._last_features: torch.Tensor | None = None
        self._last_cross: dict[str, np.ndarray] = {}

    def transcribe(self, audio: str | np.ndarray | torch.Tensor, **options: Any) -> dict[str, Any]:
        """``Whisper.transcribe``: :func:`transcribe` on this model (whisper's options and
        defaults)."""
        return transcribe(self, audio, **options)

    def to(self, *args: Any, **kwargs: Any) -> StaticCacheWhisper:
        """``Whisper.to``, so ``whisper.load_model(...).to(device)``-style code runs unchanged:
        returns this model itself. Where it runs was chosen by its backend (the CPU for the
        PyTorch and reference-executor backends, Core ML's compute units for ``coreml``)."""
        return self

    @property
    def has_alignment_heads(self) -> bool:
        """Whether the decoder returns alignment weights, which word timestamps need."""
        return bool(self.heads)

    def encoder(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, 3000)`` log-mel to ``(B, n_audio_ctx, n_audio_state)`` features.

        The last window's features are kept: word timestamps run the model on the same mel
        again (``find_alignment``), which then costs no second encoder pass.
        """
        if self._last_mel is not None and _same(mel, self._last_mel):
            return self._last_mel_features
        mel_shape = self.backend.encoder.input_spec("mel").shape
        features = []
        for one in mel.reshape(-1, *mel.shape[-2:]):
            start = time.perf_counter()
            out = self.backend.encoder({"mel": one.float().numpy().reshape(mel_shape)})
            self.stats.encoder_seconds += time.perf_counter() - start
            self.stats.windows += 1
            features.append(self._to_whisper_layout(out["encoder_output"]))
        result = torch.from_numpy(np.concatenate(features)).to(mel.dtype)
        self._last_mel, self._last_mel_features = mel.clone(), result
        return result

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
        """Cross-attention keys/values of one window (kept for the last features seen).

        ``features`` may repeat one window for several sequences (best-of-N); the window is
        decoded once."""
        if not all(_same(row, features[0]) for row in features[1:]):
            raise ValueError("the static-cache decoder decodes one window at a time")
        features = features[:1]
        if self._last_features is None or not _same(features, self._last_features):
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
    def __call__(self, mel: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``Whisper.forward`` as ``whisper.timing.find_alignment`` calls it: logits of every
        position of ``tokens`` (one sequence) in one window, and, through the hooks it put on
        ``decoder.blocks[i].cross_attn``, the alignment heads' cross-attention (replayed with
        a fresh cache and the window's cross K/V; see
        :mod:`whisper_ane.runtime.alignment_replay`)."""
        if tokens.shape[0] != 1:
            raise ValueError("the static-cache decoder decodes one sequence at a time")
        if not self.has_alignment_heads:
            raise no_alignment_heads()
        session = self.new_session(self.encoder(mel))
        logits, weights = replay(session, tokens[0].tolist())
        fire_taps(self.decoder, self.heads, weights, self.dims.n_text_head)
        return torch.from_numpy(logits)[None]

    @torch.no_grad()
    def decode(
        self, mel: torch.Tensor, options: DecodingOptions | None = None, **kwargs: Any
    ) -> DecodingResult | list[DecodingResult]:
        """``whisper.decode`` for this model: whisper's ``DecodingTask`` on the static cache."""
        options = options or DecodingOptions()
        if kwargs:
            options = replace(options, **kwargs)
        if options.beam_size is not None:
            raise beam_search_refused()
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
    """``whisper.transcribe`` on ``model``: its 30 s windows and ``seek``, prompts, temperature
    fallback, word timestamps, ``clip_timestamps`` and hallucination checks, with whisper's
    options and defaults (so the temperature fallback is on unless ``temperature`` is one
    number).

    ``fp16`` is accepted and ignored: the backend computes in the precision it was built
    for; whisper's flag would only pick the mel's dtype (and warn that the CPU has no
    float16). Options the backend cannot honour fail here in one line, before any decoding:
    ``beam_size``, and ``word_timestamps`` with a decoder built without alignment heads.
    """
    if options.get("beam_size") is not None:
        raise beam_search_refused()
    if options.get("word_timestamps") and not model.has_alignment_heads:
        raise no_alignment_heads()
    options["fp16"] = False
    return whisper.transcribe(model, audio, **options)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same shape and values (a window seen again, not a new one)."""
    return a.shape == b.shape and torch.equal(a, b)


def load_mel(path: str, n_mels: int) -> torch.Tensor:
    """One 30 s window of ``path`` as whisper computes it (``(n_mels, 3000)``)."""
    audio = whisper.pad_or_trim(whisper.load_audio(path))
    return whisper.log_mel_spectrogram(audio, n_mels=n_mels)
