"""Read tensors from checkpoint files that come from elsewhere, checked first.

Why one place: every plugin reads the same two formats (``.safetensors`` and PyTorch's zip
pickles, ``.pt``/``pytorch_model.bin``) out of the same Hugging Face directory layout
(``model.safetensors``, or shards listed in ``model.safetensors.index.json``, or
``pytorch_model.bin``). Each file is checked against its real length before anything is
allocated (:func:`~ane_core.file_checks.check_safetensors`,
:func:`~ane_core.file_checks.check_torch_zip`, Git LFS pointers included), and every failure
becomes one :class:`~ane_core.errors.WeightsError` naming the file and the fix.

The directory layout is ``transformers``' (``SAFE_WEIGHTS_NAME``, ``SAFE_WEIGHTS_INDEX_NAME``,
``WEIGHTS_NAME`` in ``transformers/utils/__init__.py``).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch

from ane_core.errors import WeightsError, brief
from ane_core.file_checks.lfs import refuse_lfs_pointer
from ane_core.file_checks.safetensors_header import check_safetensors
from ane_core.file_checks.torch_zip import check_torch_zip

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PYTORCH_BIN = "pytorch_model.bin"


def load_untrusted_torch(path: Path, fix: str) -> object:
    """``torch.load`` with ``weights_only=True``; every failure becomes one WeightsError.

    A pickle runs whatever code it names, so ``weights_only=True`` (tensors and plain
    containers only) is the only way it is opened. The zip archive is checked first, so torch
    never allocates a record the file cannot back. ``fix`` is the caller's advice for a file
    that is not a checkpoint at all.
    """
    check_torch_zip(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "GLOBAL" in str(e):  # the pickle names a function or class: possibly code
            raise WeightsError(
                f"checkpoint {path} was refused: it holds pickled code or objects, not only tensors "
                "(loaded with weights_only=True, nothing was run).",
                "Use a checkpoint that holds only tensors, e.g. one saved from model.state_dict().",
            ) from None
        raise WeightsError(
            f"checkpoint {path} is not a PyTorch checkpoint of tensors (weights_only=True cannot read it).",
            fix,
        ) from None
    except Exception as e:  # torch raises RuntimeError, EOFError, KeyError... for damaged files
        raise WeightsError(
            f"checkpoint {path} cannot be read: truncated or not a PyTorch file ({brief(e)}).",
            fix,
        ) from None


def hf_weight_files(directory: Path, fix: str) -> list[Path]:
    """The safetensors file(s) of a Hugging Face model directory, else ``pytorch_model.bin``;
    safetensors wins when both exist. Shards must be plain file names inside ``directory``."""
    if (directory / SAFETENSORS).is_file():
        return [directory / SAFETENSORS]
    index = directory / SAFETENSORS_INDEX
    if index.is_file():
        refuse_lfs_pointer(index)
        try:
            shards = sorted(
                set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise WeightsError(
                f"{index} is not a safetensors index ({e!r}).", "Restore it."
            ) from None
        for name in shards:  # a file of this directory, never a path that leaves it
            if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
                raise WeightsError(
                    f"{index} names shard {str(name)[:80]!r}, which is not a file name in "
                    f"{directory}.",
                    "Restore it.",
                )
        paths = [directory / name for name in shards]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise WeightsError(f"{directory} lacks shard {missing[0]}.", "Put every shard in it.")
        return paths
    if (directory / PYTORCH_BIN).is_file():
        return [directory / PYTORCH_BIN]
    raise WeightsError(
        f"{directory} has no {SAFETENSORS}, {SAFETENSORS_INDEX} nor {PYTORCH_BIN}.", fix
    )


def read_hf_tensors(files: list[Path], fix: str) -> dict[str, torch.Tensor]:
    """Every tensor of ``files`` (from :func:`hf_weight_files`), each file checked first."""
    if files[0].name == PYTORCH_BIN:
        loaded = load_untrusted_torch(files[0], fix)
        if not (
            isinstance(loaded, dict) and all(isinstance(t, torch.Tensor) for t in loaded.values())
        ):
            raise WeightsError(f"{files[0]} is not a state dict of tensors.", fix)
        return loaded
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    tensors: dict[str, torch.Tensor] = {}
    for path in files:
        check_safetensors(path)  # LFS pointer, cut short, sizes the file cannot back
        try:
            tensors.update(load_file(path))
        except (SafetensorError, OSError) as e:
            raise WeightsError(
                f"{path} cannot be read as safetensors ({brief(e)}).",
                "Copy or download it again.",
            ) from None
    return tensors
