"""Whisper's audio encoder rewritten for the Apple Neural Engine.

What changes against ``whisper.model.AudioEncoder`` and why (Apple, "Deploying Transformers
on the Apple Neural Engine"):
- Tensors stay in the channels-first ``(B, C, 1, S)`` layout end to end, so the sequence
  axis is last (the ANE pads the last axis to 64 bytes; 1500 frames waste little) and no
  transpose is needed between layers.
- The two Conv1d stems become Conv2d with ``(1, 3)`` kernels on ``(B, n_mels, 1, 3000)``.
- Linear layers are 1x1 convolutions, attention is split per head into einsums (see
  :mod:`ane_core.layers`), and LayerNorm normalises the channel axis.
- No dtype casts: stock Whisper runs LayerNorm and attention logits in float32
  (``x.float()``), which puts ``cast`` ops into an FP16 Core ML program and pushes work off
  the ANE.

Parameter names equal openai-whisper's, so a stock state dict loads unchanged (the hooks
reshape weights while loading).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from ane_core.layers import LayerNormANE, LinearConv2d, MultiHeadAttentionANE
from torch import Tensor, nn


class MLPANE(nn.Sequential):
    """Whisper's feed-forward block ``Linear -> GELU -> Linear`` as 1x1 convs (names mlp.0, mlp.2)."""

    def __init__(self, n_state: int) -> None:
        super().__init__(
            LinearConv2d(n_state, 4 * n_state), nn.GELU(), LinearConv2d(4 * n_state, n_state)
        )


class ResidualAttentionBlockANE(nn.Module):
    """Pre-norm self-attention + MLP block; cross-attention is added by the decoder."""

    def __init__(self, n_state: int, n_head: int) -> None:
        super().__init__()
        self.attn = MultiHeadAttentionANE(n_state, n_head, k_bias=False)
        self.attn_ln = LayerNormANE(n_state)
        self.mlp = MLPANE(n_state)
        self.mlp_ln = LayerNormANE(n_state)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.attn_ln(x))
        return x + self.mlp(self.mlp_ln(x))


def _encoder_load_hook(state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Reshape stock encoder tensors on load: Conv1d kernels ``(out, in, k)`` to Conv2d
    ``(out, in, 1, k)``, and the ``(n_ctx, C)`` positional table to ``(1, C, 1, n_ctx)``."""
    for name in ("conv1.weight", "conv2.weight"):
        weight = state_dict.get(prefix + name)
        if weight is not None and weight.dim() == 3:
            state_dict[prefix + name] = weight.unsqueeze(2)
    positions = state_dict.get(prefix + "positional_embedding")
    if positions is not None and positions.dim() == 2:
        state_dict[prefix + "positional_embedding"] = positions.t()[None, :, None, :]


class AudioEncoderANE(nn.Module):
    """Mel spectrogram ``(B, n_mels, 1, 2*n_ctx)`` to features ``(B, n_state, 1, n_ctx)``."""

    def __init__(self, n_mels: int, n_ctx: int, n_state: int, n_head: int, n_layer: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(n_mels, n_state, kernel_size=(1, 3), padding=(0, 1))
        self.conv2 = nn.Conv2d(n_state, n_state, kernel_size=(1, 3), stride=(1, 2), padding=(0, 1))
        self.register_buffer("positional_embedding", torch.empty(1, n_state, 1, n_ctx))
        self.blocks = nn.ModuleList(
            ResidualAttentionBlockANE(n_state, n_head) for _ in range(n_layer)
        )
        self.ln_post = LayerNormANE(n_state)
        self._register_load_state_dict_pre_hook(_encoder_load_hook)

    def forward(self, mel: Tensor) -> Tensor:
        if not torch.jit.is_tracing():  # as whisper's own assert (a trace may be shorter)
            frames = 2 * self.positional_embedding.shape[3]
            if mel.shape[3] != frames:
                raise ValueError(f"expected a mel of {frames} frames, got {tuple(mel.shape)}")
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x))
        # Sliced to the input's length (the whole table at the real 3000-frame input), so the
        # graph never bakes a length and traces from a few frames (see build_encoder).
        x = x + self.positional_embedding[:, :, :, : x.shape[3]]
        for block in self.blocks:
            x = block(x)
        return self.ln_post(x)
