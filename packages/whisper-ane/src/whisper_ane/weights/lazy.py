"""A state dict whose tensors are read (or made) when first asked for.

Why: exporting ``--component all`` converts one component at a time, and a component needs
its own tensors only (the encoder's are 40% of medium, the decoder's 55%). Holding the whole
float32 checkpoint from the start made every conversion's peak memory include all of it:
medium's export peaked at 4.2 GiB with 3 GiB of weights loaded before the encoder started.
Here a name maps to a loader; the tensor is read from the checkpoint (or generated, for
random weights) on first access and kept until :meth:`LazyStateDict.unload` or ``del``, so
the architecture can hand each component's tensors back after its export
(``Architecture.release_weights``) and load the next component's then.

It is a ``MutableMapping``: code that reads a ``dict`` of tensors works unchanged (but
iterating ``.items()`` or ``.values()`` loads everything; iterate names and index instead).
To save it (``torch.save``), copy it into a ``dict`` first: ``dict(weights.state_dict)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping

import torch
from ane_core.errors import WeightsError


class LazyStateDict(MutableMapping[str, torch.Tensor]):
    """``{name: tensor}`` with every name's shape known and its tensor loaded on demand."""

    def __init__(
        self,
        shapes: Mapping[str, tuple[int, ...]],
        load: Callable[[str], torch.Tensor],
        source: str = "the checkpoint",
    ) -> None:
        self._shapes = {name: tuple(shape) for name, shape in shapes.items()}
        self._load = load
        self._loaded: dict[str, torch.Tensor] = {}
        self._source = source

    def __getitem__(self, name: str) -> torch.Tensor:
        tensor = self._loaded.get(name)
        if tensor is not None:
            return tensor
        if name not in self._shapes:
            raise KeyError(name)
        tensor = self._load(name)
        if tuple(tensor.shape) != self._shapes[name]:
            raise WeightsError(
                f"{self._source}: {name} has shape {tuple(tensor.shape)}, its header "
                f"{self._shapes[name]}.",
                "The checkpoint is damaged; copy or download it again.",
            )
        self._loaded[name] = tensor
        return tensor

    def __setitem__(self, name: str, tensor: torch.Tensor) -> None:
        self._shapes[name] = tuple(tensor.shape)
        self._loaded[name] = tensor

    def __delitem__(self, name: str) -> None:
        del self._shapes[name]
        self._loaded.pop(name, None)

    def __contains__(self, name: object) -> bool:  # Mapping's default would load it
        return name in self._shapes

    def __iter__(self) -> Iterator[str]:
        return iter(self._shapes)

    def __len__(self) -> int:
        return len(self._shapes)

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of ``name`` without loading it."""
        return self._shapes[name]

    def loaded(self) -> list[str]:
        """Names whose tensors are in memory now."""
        return list(self._loaded)

    def unload(self) -> None:
        """Drop every loaded tensor (they load again when asked for)."""
        self._loaded.clear()


def tensor_shape(state: Mapping[str, torch.Tensor], name: str) -> tuple[int, ...]:
    """The shape of ``state[name]``, without loading it from a :class:`LazyStateDict`."""
    if isinstance(state, LazyStateDict):
        return state.shape(name)
    return tuple(state[name].shape)
