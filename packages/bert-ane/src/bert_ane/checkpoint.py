"""Load a Hugging Face BERT-family checkpoint directory, safely and offline.

Why here and not ``from_pretrained`` alone: the ANE build needs the raw state dict (to map it
onto its own modules), the dimensions (from ``config.json``, never from a name), the
sentence-transformers pooling that belongs to the checkpoint, and provenance for the export's
metadata (file and SHA-256). Weights come from ``model.safetensors`` (or its shards), which
cannot hold code; a ``pytorch_model.bin`` is read only with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ane_core.errors import UsageError, WeightsError, brief
from ane_core.file_checks import files_sha256

from bert_ane.config import EncoderShape, encoder_shape
from bert_ane.pooling import PoolingConfig, read_pooling

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PYTORCH_BIN = "pytorch_model.bin"
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


def _weight_files(directory: Path) -> list[Path]:
    if (directory / SAFETENSORS).is_file():
        return [directory / SAFETENSORS]
    index = directory / SAFETENSORS_INDEX
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (ValueError, KeyError, TypeError) as error:
            raise WeightsError(f"{index} is not a safetensors index ({error}).") from None
        return [directory / shard for shard in shards]
    if (directory / PYTORCH_BIN).is_file():
        return [directory / PYTORCH_BIN]
    raise WeightsError(
        f"{directory} has no {SAFETENSORS}, {SAFETENSORS_INDEX} or {PYTORCH_BIN}.",
        "Pass a Hugging Face model directory with its weights.",
    )


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsError(f"weight file {path} is missing.", "Download the complete checkpoint.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated files, pickled code refused by weights_only...
        raise WeightsError(
            f"cannot read {path}: {brief(error)}",
            "Use an intact safetensors (or weights-only PyTorch) checkpoint.",
        ) from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a state dict.")
    return state


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
            "Pass a Hugging Face model directory (config.json and model.safetensors).",
        )
    directory = Path(checkpoint).expanduser()
    if not directory.is_dir():
        raise WeightsError(
            f"checkpoint {directory} is not a directory.",
            "Pass a Hugging Face model directory (config.json and model.safetensors).",
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
    files = _weight_files(directory)
    state: dict[str, torch.Tensor] = {}
    for path in files:
        state.update(_read_tensors(path))
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
