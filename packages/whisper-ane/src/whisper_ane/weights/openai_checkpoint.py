"""Read an openai-whisper ``.pt`` checkpoint: ``{"dims": {...}, "model_state_dict": {...}}``.

Why: this is the format ``whisper.load_model`` downloads and fine-tuning scripts save. A
``.pt`` file is a pickle, and unpickling runs whatever code the file names, so it is only
ever opened with ``torch.load(..., weights_only=True)``, which accepts tensors and plain
containers and refuses anything else before it runs.
"""

from __future__ import annotations

from pathlib import Path

import torch
from ane_core.errors import WeightsError
from ane_core.file_checks import load_untrusted_torch
from whisper.model import ModelDimensions

_FIX = "Pass an openai-whisper .pt checkpoint, a CTranslate2 model directory, or --weights random."


def load_openai_checkpoint(path: Path) -> tuple[ModelDimensions, dict[str, torch.Tensor]]:
    """Dimensions and float32 state dict of an openai-whisper checkpoint file.

    Half-precision tensors are widened one at a time, dropping each original as it goes,
    so peak memory stays near the float32 model size.
    """
    checkpoint = load_untrusted_torch(path, _FIX)
    if not (
        isinstance(checkpoint, dict)
        and isinstance(checkpoint.get("dims"), dict)
        and isinstance(checkpoint.get("model_state_dict"), dict)
    ):
        raise WeightsError(
            f"checkpoint {path} is not an openai-whisper checkpoint (a dict with 'dims' and 'model_state_dict').",
            _FIX,
        )
    try:
        dims = ModelDimensions(**{k: int(v) for k, v in checkpoint["dims"].items()})
    except (TypeError, ValueError, OverflowError) as e:
        raise WeightsError(f"checkpoint {path} has unusable 'dims' ({e}).", _FIX) from None
    source: dict = checkpoint.pop("model_state_dict")
    del checkpoint
    state: dict[str, torch.Tensor] = {}
    for name in list(source):
        tensor = source.pop(name)
        if not (isinstance(tensor, torch.Tensor) and tensor.is_floating_point()):
            raise WeightsError(f"checkpoint {path}: {name} is not a floating-point tensor.", _FIX)
        state[name] = tensor.float()
    return dims, state
