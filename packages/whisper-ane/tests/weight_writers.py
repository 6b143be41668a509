"""Writers of weight files for the tests: synthetic CTranslate2 ``model.bin`` files and
Hugging Face directories, laid out the way their converters write them, so readers can be
tested on small models and on damaged copies."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from whisper.model import ModelDimensions

from whisper_ane.weights import LoadedWeights
from whisper_ane.weights.ctranslate2 import name_map as ct2_name_map
from whisper_ane.weights.huggingface import name_map

SMALL = ModelDimensions(
    n_mels=4, n_audio_ctx=6, n_audio_state=8, n_audio_head=2, n_audio_layer=2,
    n_vocab=10, n_text_ctx=5, n_text_state=8, n_text_head=2, n_text_layer=2,
)  # fmt: skip

_DTYPE_CODES = {np.dtype("<f4"): 0, np.dtype("i1"): 1, np.dtype("<i2"): 2, np.dtype("<f2"): 4}


def _string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_ct2(
    directory: Path,
    variables: dict[str, np.ndarray],
    *,
    version: int = 6,
    spec: str = "WhisperSpec",
    aliases: dict[str, str] | None = None,
    dtype_codes: dict[str, int] | None = None,
) -> Path:
    """Write a CTranslate2 model.bin (+ empty config.json); ``dtype_codes`` overrides codes."""
    directory.mkdir(parents=True, exist_ok=True)
    out = [
        struct.pack("<I", version),
        _string(spec),
        struct.pack("<I", 3),
        struct.pack("<I", len(variables)),
    ]
    for name, array in variables.items():
        code = (dtype_codes or {}).get(name, _DTYPE_CODES.get(array.dtype, 5))
        data = array.tobytes()
        out += [
            _string(name),
            struct.pack("<B", array.ndim),
            struct.pack(f"<{array.ndim}I", *array.shape),
        ]
        out += [struct.pack("<B", code), struct.pack("<I", len(data)), data]
    out.append(struct.pack("<I", len(aliases or {})))
    for alias, target in (aliases or {}).items():
        out += [_string(alias), _string(target)]
    (directory / "model.bin").write_bytes(b"".join(out))
    (directory / "config.json").write_text(json.dumps({"alignment_heads": [[1, 0]]}))
    return directory


def ct2_variables(state: dict[str, torch.Tensor], dims: ModelDimensions) -> dict[str, np.ndarray]:
    """The inverse of the name mapping: fuse q,k,v (zero k bias) the way the converter does."""
    blocks: dict[str, dict[int, np.ndarray]] = {}
    counts: dict[str, int] = {}
    for ours, (theirs, part, parts) in ct2_name_map(dims.n_audio_layer, dims.n_text_layer).items():
        blocks.setdefault(theirs, {})[part] = state[ours].numpy()
        counts[theirs] = parts
    variables = {}
    for name, parts in blocks.items():
        like = next(iter(parts.values()))
        variables[name] = np.concatenate(
            [parts.get(i, np.zeros_like(like)) for i in range(counts[name])]
        )
    variables["encoder/num_heads"] = np.array(dims.n_audio_head, dtype="<i2")
    variables["decoder/num_heads"] = np.array(dims.n_text_head, dtype="<i2")
    return variables


def hf_config(dims, **overrides) -> dict:
    """The config.json transformers writes for a Whisper model of these dimensions."""
    config = {
        "model_type": "whisper",
        "architectures": ["WhisperForConditionalGeneration"],
        "num_mel_bins": dims.n_mels,
        "max_source_positions": dims.n_audio_ctx,
        "d_model": dims.n_audio_state,
        "encoder_attention_heads": dims.n_audio_head,
        "encoder_layers": dims.n_audio_layer,
        "encoder_ffn_dim": 4 * dims.n_audio_state,
        "vocab_size": dims.n_vocab,
        "max_target_positions": dims.n_text_ctx,
        "decoder_attention_heads": dims.n_text_head,
        "decoder_layers": dims.n_text_layer,
        "decoder_ffn_dim": 4 * dims.n_text_state,
        "activation_function": "gelu",
        "scale_embedding": False,
        "pad_token_id": 50256,
        "bos_token_id": 50257,
        "eos_token_id": 50256,
        "decoder_start_token_id": 50257,
        "tie_word_embeddings": True,
    }
    return config | overrides


def to_hf_state(weights: LoadedWeights, prefix: str = "model.") -> dict[str, torch.Tensor]:
    """The inverse of the loader's table: openai-whisper names -> transformers names."""
    mapping = name_map(weights.dims.n_audio_layer, weights.dims.n_text_layer)
    return {prefix + mapping[name]: t.contiguous() for name, t in weights.state_dict.items()}


def write_hf_dir(
    directory: Path,
    weights: LoadedWeights,
    *,
    fmt: str = "safetensors",
    state: dict[str, torch.Tensor] | None = None,
    **config_overrides,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    state = to_hf_state(weights) if state is None else state
    config = hf_config(weights.dims, **config_overrides)
    (directory / "config.json").write_text(json.dumps(config), encoding="utf-8")
    if fmt == "safetensors":
        save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    else:
        torch.save(state, directory / "pytorch_model.bin")
    return directory


def write_sharded_hf_dir(directory: Path, weights: LoadedWeights, shards: int = 2) -> Path:
    """A transformers directory whose tensors are split over ``shards`` safetensors files
    listed in ``model.safetensors.index.json`` (the layout of large checkpoints)."""
    state = to_hf_state(weights)
    write_hf_dir(directory, weights)
    (directory / "model.safetensors").unlink()
    names = sorted(state)
    weight_map = {}
    for i in range(shards):
        shard = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        keys = names[i::shards]
        save_file({k: state[k] for k in keys}, str(directory / shard))
        weight_map |= dict.fromkeys(keys, shard)
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return directory
