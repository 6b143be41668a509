"""Load a Hugging Face BERT-family checkpoint directory, safely and offline.

Why here and not ``from_pretrained`` alone: the ANE build needs the raw state dict (to map it
onto its own modules), the dimensions (from ``config.json``, never from a name), the
sentence-transformers pooling that belongs to the checkpoint, and provenance for the export's
metadata (file and SHA-256). Weights come from ``model.safetensors`` (or its shards), which
cannot hold code; a ``pytorch_model.bin`` is read only with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ane_core.errors import UsageError, WeightsError, brief
from ane_core.file_checks import files_sha256, hf_weight_files, read_hf_tensors

from bert_ane.config import EncoderShape, encoder_shape
from bert_ane.pooling import PoolingConfig, read_pooling

_FIX = "Pass a Hugging Face model directory (config.json and model.safetensors)."
BASE_MODEL_PREFIXES = ("bert.", "distilbert.", "roberta.")
"""Task checkpoints (``BertForMaskedLM``...) keep the encoder under the family's prefix."""


@dataclass
class BertCheckpoint:
    """A checkpoint directory read into memory: config, shape, encoder weights, pooling."""

    directory: Path
    config: Any
    """The ``transformers`` config object (``AutoConfig.from_pretrained(directory)``)."""
    shape: EncoderShape
    state_dict: dict[str, torch.Tensor]
    """Encoder weights in the base model's names (``embeddings.*``, ``encoder.*``...)."""
    pooling: PoolingConfig
    source: str
    checkpoint_path: str | None
    sha256: str | None


def base_model_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder's tensors in base-model names: a task model's ``bert.`` (etc.) prefix is
    removed and heads (``cls.*``, ``classifier.*``, ``pooler.*``...) stay behind."""
    for prefix in BASE_MODEL_PREFIXES:
        if any(key.startswith(prefix) for key in state):
            state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            break
    roots = ("embeddings.", "encoder.", "transformer.")
    return {k: v.float() for k, v in state.items() if k.startswith(roots)}


def load_checkpoint(checkpoint: str | Path | None) -> BertCheckpoint:
    """Read the checkpoint directory ``checkpoint`` (``config.json`` plus weights)."""
    if checkpoint is None:
        raise UsageError(
            "bert needs --checkpoint DIR.",
            _FIX,
        )
    directory = Path(checkpoint).expanduser()
    if not directory.is_dir():
        raise WeightsError(
            f"checkpoint {directory} is not a directory.",
            _FIX,
        )
    if not (directory / "config.json").is_file():
        raise WeightsError(
            f"{directory} has no config.json.", "Pass a Hugging Face model directory."
        )
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError, KeyError) as error:
        raise WeightsError(f"cannot read {directory / 'config.json'}: {brief(error)}") from None
    shape = encoder_shape(config)
    files = hf_weight_files(directory, _FIX)  # checked against their lengths before reading
    state = read_hf_tensors(files, _FIX)
    return BertCheckpoint(
        directory=directory,
        config=config,
        shape=shape,
        state_dict=base_model_state(state),
        pooling=read_pooling(directory),
        source=f"huggingface:{directory}",
        checkpoint_path=str(files[0] if len(files) == 1 else directory),
        sha256=files_sha256(files),
    )
