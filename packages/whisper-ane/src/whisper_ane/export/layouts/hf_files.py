"""The files a WhisperKit model folder carries beside its models, in Hugging Face's format.

* ``config.json``: ``WhisperConfig`` (model type, dimensions, special token ids);
* ``generation_config.json``: ``GenerationConfig`` for Whisper, with ``alignment_heads`` (the
  heads the exported ``alignment_heads_weights`` averages) and the special token ids;
* ``tokenizer.json`` when the weight source has one (CTranslate2 and Hugging Face
  directories do), with a ``tokenizer_config.json``: WhisperKit looks for ``tokenizer.json``
  in the model folder, and swift-transformers' ``AutoTokenizer.from(modelFolder:)`` also
  reads ``tokenizer_config.json`` (without it, it falls back to a Hub download).

From a Hugging Face checkpoint its own ``config.json``, ``generation_config.json`` and
``tokenizer_config.json`` are kept (a fine-tune's settings stay), with ``alignment_heads``
set to the exported heads; otherwise they are written from the dimensions and openai-
whisper's tokenizer, with the field names and values of transformers'
``convert_openai_to_hf.py`` and the Hub's ``openai/whisper-*`` configs. WhisperKit itself
reads none of the two configs; other tools (and whisperkittools' folders) carry them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from whisper_ane.model.decoder import AlignmentHeads
from whisper_ane.weights.huggingface import is_huggingface_dir
from whisper_ane.weights.source import LoadedWeights
from whisper_ane.weights.vocabulary import is_multilingual, suppressed_tokens, tokenizer_for

TOKENIZER_CONFIG = {
    "tokenizer_class": "WhisperTokenizer",
    "bos_token": "<|endoftext|>",
    "eos_token": "<|endoftext|>",
    "unk_token": "<|endoftext|>",
    "pad_token": "<|endoftext|>",
    "add_prefix_space": False,
    "errors": "replace",
    "model_max_length": 1024,
}
"""As the Hub's ``openai/whisper-*`` ``tokenizer_config.json`` (their added-token table is in
``tokenizer.json`` already)."""


def config(weights: LoadedWeights) -> dict[str, Any]:
    """``config.json``: transformers' ``WhisperConfig`` of these dimensions."""
    d = weights.dims
    tokenizer = tokenizer_for(d.n_vocab)
    return {
        "architectures": ["WhisperForConditionalGeneration"],
        "model_type": "whisper",
        "vocab_size": d.n_vocab,
        "num_mel_bins": d.n_mels,
        "d_model": d.n_audio_state,
        "encoder_layers": d.n_audio_layer,
        "encoder_attention_heads": d.n_audio_head,
        "encoder_ffn_dim": 4 * d.n_audio_state,
        "decoder_layers": d.n_text_layer,
        "decoder_attention_heads": d.n_text_head,
        "decoder_ffn_dim": 4 * d.n_text_state,
        "max_source_positions": d.n_audio_ctx,
        "max_target_positions": d.n_text_ctx,
        "activation_function": "gelu",
        "scale_embedding": False,
        "tie_word_embeddings": True,
        "bos_token_id": tokenizer.eot,
        "eos_token_id": tokenizer.eot,
        "pad_token_id": tokenizer.eot,
        "decoder_start_token_id": tokenizer.sot,
        "begin_suppress_tokens": [*tokenizer.encode(" "), tokenizer.eot],
    }


def generation_config(weights: LoadedWeights, heads: AlignmentHeads) -> dict[str, Any]:
    """``generation_config.json``: transformers' Whisper ``GenerationConfig``."""
    d = weights.dims
    tokenizer = tokenizer_for(d.n_vocab)
    multilingual = is_multilingual(d.n_vocab)
    result: dict[str, Any] = {
        "alignment_heads": [[layer, head] for layer, head in heads],
        "begin_suppress_tokens": [*tokenizer.encode(" "), tokenizer.eot],
        "bos_token_id": tokenizer.eot,
        "decoder_start_token_id": tokenizer.sot,
        "eos_token_id": tokenizer.eot,
        "pad_token_id": tokenizer.eot,
        "is_multilingual": multilingual,
        "max_initial_timestamp_index": 50,
        "max_length": d.n_text_ctx,
        "no_timestamps_token_id": tokenizer.no_timestamps,
        "prev_sot_token_id": tokenizer.sot_prev,
        "return_timestamps": False,
        "suppress_tokens": list(suppressed_tokens(tokenizer)),
    }
    if multilingual:
        result["lang_to_id"] = {
            f"<|{code}|>": token
            for code, token in zip(
                tokenizer.all_language_codes, tokenizer.all_language_tokens, strict=True
            )
        }
        result["task_to_id"] = {
            "transcribe": tokenizer.transcribe,
            "translate": tokenizer.translate,
        }
    return result


def _json(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def whisperkit_files(weights: LoadedWeights, heads: AlignmentHeads) -> dict[str, bytes]:
    """Every file of the module docstring that these weights can give, by name."""
    source = Path(weights.source_dir) if weights.source_dir else None
    hf = source is not None and is_huggingface_dir(source)
    own_config = _read_json(source / "config.json") if hf else None
    own_generation = _read_json(source / "generation_config.json") if hf else None
    generation = own_generation or generation_config(weights, heads)
    generation["alignment_heads"] = [[layer, head] for layer, head in heads]
    files = {
        "config.json": _json(own_config or config(weights)),
        "generation_config.json": _json(generation),
    }
    if source is not None and (source / "tokenizer.json").is_file():
        files["tokenizer.json"] = (source / "tokenizer.json").read_bytes()
        own_tokenizer_config = _read_json(source / "tokenizer_config.json")
        files["tokenizer_config.json"] = _json(own_tokenizer_config or TOKENIZER_CONFIG)
    return files
