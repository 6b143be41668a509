"""Read a Hugging Face transformers Whisper directory (``config.json`` + weights).

Why: fine-tuned Whisper models and distil-whisper are published in the transformers
layout, not as openai-whisper ``.pt`` files. Such a directory holds ``config.json`` (a
``WhisperConfig``, ``"model_type": "whisper"``) and ``model.safetensors`` (or shards
listed in ``model.safetensors.index.json``), or a legacy ``pytorch_model.bin``.
Safetensors files are read without running any code; a ``.bin`` pickle is only opened
with ``torch.load(..., weights_only=True)``. Tensors are widened to float32 one at a
time, so peak memory stays near one float32 copy of the model.

All naming knowledge lives in :data:`_TOP_LEVEL` and :data:`_LAYER` (one table: the
transformers name of every openai-whisper parameter); :func:`name_map` expands it per layer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from ane_core.errors import WeightsError
from ane_core.file_checks import hf_weight_files, read_hf_tensors, refuse_lfs_pointer
from whisper.model import ModelDimensions

_FIX = (
    "Pass a transformers Whisper directory (config.json + model.safetensors or pytorch_model.bin)."
)

# ---------------------------------------------------------------------------------------
# The one name table: openai-whisper name -> transformers name (without the ``model.``
# prefix that WhisperForConditionalGeneration adds and WhisperModel does not). Key
# projections have no bias in either. ``proj_out.weight`` is tied to ``embed_tokens``
# (openai-whisper computes logits with the token embedding), so it is not mapped.
# ---------------------------------------------------------------------------------------
_TOP_LEVEL: dict[str, str] = {
    "encoder.conv1.weight": "encoder.conv1.weight",
    "encoder.conv1.bias": "encoder.conv1.bias",
    "encoder.conv2.weight": "encoder.conv2.weight",
    "encoder.conv2.bias": "encoder.conv2.bias",
    "encoder.positional_embedding": "encoder.embed_positions.weight",
    "encoder.ln_post.weight": "encoder.layer_norm.weight",
    "encoder.ln_post.bias": "encoder.layer_norm.bias",
    "decoder.token_embedding.weight": "decoder.embed_tokens.weight",
    "decoder.positional_embedding": "decoder.embed_positions.weight",
    "decoder.ln.weight": "decoder.layer_norm.weight",
    "decoder.ln.bias": "decoder.layer_norm.bias",
}
_LAYER: dict[str, str] = {  # inside blocks.N / layers.N, encoder and decoder alike
    "attn.query.weight": "self_attn.q_proj.weight",
    "attn.query.bias": "self_attn.q_proj.bias",
    "attn.key.weight": "self_attn.k_proj.weight",
    "attn.value.weight": "self_attn.v_proj.weight",
    "attn.value.bias": "self_attn.v_proj.bias",
    "attn.out.weight": "self_attn.out_proj.weight",
    "attn.out.bias": "self_attn.out_proj.bias",
    "attn_ln.weight": "self_attn_layer_norm.weight",
    "attn_ln.bias": "self_attn_layer_norm.bias",
    "mlp.0.weight": "fc1.weight",
    "mlp.0.bias": "fc1.bias",
    "mlp.2.weight": "fc2.weight",
    "mlp.2.bias": "fc2.bias",
    "mlp_ln.weight": "final_layer_norm.weight",
    "mlp_ln.bias": "final_layer_norm.bias",
}
_CROSS_LAYER: dict[str, str] = {  # decoder layers only
    "cross_attn.query.weight": "encoder_attn.q_proj.weight",
    "cross_attn.query.bias": "encoder_attn.q_proj.bias",
    "cross_attn.key.weight": "encoder_attn.k_proj.weight",
    "cross_attn.value.weight": "encoder_attn.v_proj.weight",
    "cross_attn.value.bias": "encoder_attn.v_proj.bias",
    "cross_attn.out.weight": "encoder_attn.out_proj.weight",
    "cross_attn.out.bias": "encoder_attn.out_proj.bias",
    "cross_attn_ln.weight": "encoder_attn_layer_norm.weight",
    "cross_attn_ln.bias": "encoder_attn_layer_norm.bias",
}
_IGNORED = {"proj_out.weight"}  # tied to decoder.embed_tokens.weight (checked equal)

_CONFIG_DIMS: dict[str, str] = {  # ModelDimensions field -> WhisperConfig key
    "n_mels": "num_mel_bins",
    "n_audio_ctx": "max_source_positions",
    "n_audio_state": "d_model",
    "n_audio_head": "encoder_attention_heads",
    "n_audio_layer": "encoder_layers",
    "n_vocab": "vocab_size",
    "n_text_ctx": "max_target_positions",
    "n_text_state": "d_model",
    "n_text_head": "decoder_attention_heads",
    "n_text_layer": "decoder_layers",
}


def name_map(n_audio_layer: int, n_text_layer: int) -> dict[str, str]:
    """Every openai-whisper state-dict name -> its transformers name (``model.`` prefix off)."""
    mapping = dict(_TOP_LEVEL)
    for side, layers, block in (
        ("encoder", n_audio_layer, _LAYER),
        ("decoder", n_text_layer, _LAYER | _CROSS_LAYER),
    ):
        for i in range(layers):
            for ours, theirs in block.items():
                mapping[f"{side}.blocks.{i}.{ours}"] = f"{side}.layers.{i}.{theirs}"
    return mapping


def is_huggingface_dir(directory: Path) -> bool:
    """True when ``directory/config.json`` is a transformers WhisperConfig.

    CTranslate2 directories also hold a config.json, but without ``model_type``.
    """
    config = directory / "config.json"
    if not config.is_file():
        return False
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and data.get("model_type") == "whisper"


def read_dims(directory: Path) -> ModelDimensions:
    """Dimensions from ``config.json``, refusing configurations stock Whisper cannot compute."""
    config_path = directory / "config.json"
    try:
        config: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
        dims = ModelDimensions(**{ours: int(config[key]) for ours, key in _CONFIG_DIMS.items()})
    except (ValueError, TypeError, KeyError, OverflowError) as e:
        raise WeightsError(f"{config_path} is not a usable WhisperConfig ({e!r}).", _FIX) from None
    if config.get("scale_embedding"):
        raise WeightsError(
            f"{config_path} sets scale_embedding, which openai-whisper's decoder does not do.",
            "Export a checkpoint with scale_embedding false (every released Whisper model).",
        )
    activation = config.get("activation_function", "gelu")
    if activation != "gelu":
        raise WeightsError(
            f"{config_path} uses activation {activation!r}; openai-whisper's MLP is gelu.",
            "Export a checkpoint with activation_function gelu (every released Whisper model).",
        )
    return dims


def read_alignment_heads(directory: Path) -> tuple[tuple[int, int], ...] | None:
    """``alignment_heads`` from ``generation_config.json``, when the model ships them."""
    path = directory / "generation_config.json"
    if not path.is_file():
        return None
    refuse_lfs_pointer(path)
    try:
        heads = json.loads(path.read_text(encoding="utf-8")).get("alignment_heads")
        return None if heads is None else tuple((int(layer), int(head)) for layer, head in heads)
    except (ValueError, TypeError, AttributeError, OverflowError) as e:
        raise WeightsError(
            f"{path} is not valid generation config JSON ({e}).", "Restore it."
        ) from None


def weight_files(directory: Path) -> list[Path]:
    """The safetensors file(s), else ``pytorch_model.bin``; safetensors wins when both exist."""
    return hf_weight_files(directory, _FIX)


def load_huggingface_state(
    directory: Path, dims: ModelDimensions
) -> tuple[dict[str, torch.Tensor], list[Path]]:
    """float32 state dict in openai-whisper names, and the files it came from."""
    files = weight_files(directory)
    raw = read_hf_tensors(files, _FIX)
    prefix = "model." if any(name.startswith("model.") for name in raw) else ""
    mapping = name_map(dims.n_audio_layer, dims.n_text_layer)
    known = {prefix + theirs for theirs in mapping.values()} | _IGNORED
    extra = sorted(set(raw) - known)
    if extra:
        raise WeightsError(
            f"{directory} has unexpected tensor {extra[0]} ({len(extra)} not in a Whisper model "
            f"with {dims.n_audio_layer} encoder and {dims.n_text_layer} decoder layers).",
            "Check that config.json belongs to these weights.",
        )
    state: dict[str, torch.Tensor] = {}
    for ours, theirs in mapping.items():
        tensor = raw.pop(prefix + theirs, None)
        if tensor is None:
            raise WeightsError(f"{directory} lacks tensor {prefix + theirs}.", _FIX)
        if not tensor.is_floating_point():
            raise WeightsError(f"{directory}: {prefix + theirs} is not floating point.", _FIX)
        state[ours] = tensor.float()
        del tensor
    proj_out = raw.pop("proj_out.weight", None)
    if proj_out is not None and not torch.equal(
        proj_out.float(), state["decoder.token_embedding.weight"]
    ):
        raise WeightsError(
            f"{directory}: proj_out.weight differs from the token embedding (untied output head), "
            "which openai-whisper cannot represent.",
            "Use a checkpoint with tied word embeddings.",
        )
    return state, files
