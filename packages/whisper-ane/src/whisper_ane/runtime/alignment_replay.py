"""Word timestamps on a static-cache decoder, with whisper's own timing code.

``whisper.timing.find_alignment`` (median filter, DTW, punctuation merging and all of
``add_word_timestamps`` around it) gets the cross-attention of its alignment heads by hooking
each decoder block's ``cross_attn`` and running the model once over the sequence
``sot_sequence + <|notimestamps|> + text tokens + <|endoftext|>``. Our decoders step one token
at a time and have no torch blocks to hook, so we replace only how those weights are obtained:

* :func:`replay` feeds the same sequence through the backend's decoder step, with a fresh
  self-attention cache and the window's cross-attention K/V, and collects each step's
  ``alignment_weights`` output (the heads' post-softmax weights over the 1500 audio frames);
* :class:`TappedDecoder` gives whisper the ``decoder.blocks[i].cross_attn`` modules it hooks;
  :func:`fire_taps` calls them with what the hooks expect (``outs[-1]``, per layer
  ``(1, n_head, T, n_audio_ctx)`` scores).

whisper slices the scores to the audio's frames and takes the softmax over that slice. We pass
``log(weights)``: the softmax of log-weights over any slice is the weights renormalised over
it, which is exactly what whisper computes from its raw scores. Nothing of whisper's timing
code is copied.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from whisper_ane.model.decoder import AlignmentHeads
from whisper_ane.runtime.session import DecoderSession

LOG_FLOOR = float(np.log(np.finfo(np.float32).tiny))
"""log of the smallest normal float32: a weight that rounded to 0 (float16) stays finite."""


class CrossAttentionTap(nn.Module):
    """Stands in for a block's ``cross_attn``: returns ``(None, scores)`` so a forward hook
    (``find_alignment``'s) sees the scores as ``outs[-1]``."""

    def forward(self, scores: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, scores


class TappedBlock:
    """What whisper reads of a decoder block: ``cross_attn`` to hook, and ``attn.key`` /
    ``attn.value``, which ``PyTorchInference.__init__`` lists (it never runs them here)."""

    def __init__(self) -> None:
        self.attn = SimpleNamespace(key=None, value=None)
        self.cross_attn = CrossAttentionTap()


class TappedDecoder:
    """``model.decoder`` as whisper's decoding and timing code read it: ``blocks`` only."""

    def __init__(self, n_layer: int) -> None:
        self.blocks = [TappedBlock() for _ in range(n_layer)]


def replay(session: DecoderSession, tokens: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Step ``tokens`` through a fresh ``session``: logits ``(T, n_vocab)`` and alignment
    weights ``(T, H_a, n_audio_ctx)``, float32."""
    if not session.has_alignment:
        raise ValueError("the decoder has no alignment_weights output")
    logits, weights = [], []
    for token in tokens:
        logits.append(session.step(int(token)))
        weights.append(session.alignment_weights)
    return np.stack(logits), np.stack(weights)


def fire_taps(
    decoder: TappedDecoder, heads: AlignmentHeads, weights: np.ndarray, n_head: int
) -> None:
    """Call each block's tap with the log-weights of its alignment heads, ``(1, n_head, T,
    n_audio_ctx)`` (rows of other heads are never read); layers without one are left out."""
    logs = np.log(np.maximum(weights, np.finfo(np.float32).tiny))  # (T, H_a, S)
    steps, _, frames = weights.shape
    for layer in sorted({layer for layer, _ in heads}):
        scores = torch.full((1, n_head, steps, frames), LOG_FLOOR)
        for index, (head_layer, head) in enumerate(heads):
            if head_layer == layer:
                scores[0, head] = torch.from_numpy(logs[:, index])
        decoder.blocks[layer].cross_attn(scores)
