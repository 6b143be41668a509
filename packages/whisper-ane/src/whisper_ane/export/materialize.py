"""Build a component's module from loaded weights without copying them.

Why: a medium or large checkpoint is gigabytes; initialising random parameters and then
copying the checkpoint into them would double peak memory and waste seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from whisper_ane.weights.source import LoadedWeights


def component_state(
    weights: LoadedWeights, prefix: str, keep: Callable[[str], bool] | None = None
) -> dict[str, torch.Tensor]:
    """The part of a whisper state dict under ``prefix`` (e.g. ``encoder.``), prefix removed
    (``keep``: only the names, without prefix, it accepts). Only those tensors are read from
    a lazy state dict (:mod:`whisper_ane.weights.lazy`)."""
    names = [name for name in weights.state_dict if name.startswith(prefix)]
    names = [name for name in names if keep is None or keep(name[len(prefix) :])]
    return {name[len(prefix) :]: weights.state_dict[name] for name in names}


def materialize(
    factory: Callable[[], torch.nn.Module],
    state: dict[str, torch.Tensor],
    drop: Sequence[str] = (),
) -> torch.nn.Module:
    """Build a module on the meta device and adopt ``state``'s tensors (strict, no copy).

    ``drop``: dotted paths of submodules the forward pass never runs (a decoder's
    cross-attention key and value projections, which ``cross_kv`` computes instead); they are
    removed before loading, so their tensors need not be in ``state`` (nor in memory)."""
    with torch.device("meta"):
        module = factory()
    for path in drop:
        owner, _, name = path.rpartition(".")
        delattr(module.get_submodule(owner) if owner else module, name)
    module.load_state_dict(state, strict=True, assign=True)
    return module.eval()
