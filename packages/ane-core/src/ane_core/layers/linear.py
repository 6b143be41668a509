"""``nn.Linear`` as a 1x1 ``nn.Conv2d`` over the ANE layout ``(B, C, 1, S)``.

Why: "Deploying Transformers on the Apple Neural Engine" replaces every ``nn.Linear`` with an
equivalent 1x1 ``nn.Conv2d``. On a channels-first ``(B, C, 1, S)`` tensor (see
:mod:`ane_core.layers.layout`) a 1x1 convolution is exactly a linear layer applied at every
sequence position, and convolution is the ANE's native, best-optimised primitive; no transpose
is needed around it.

The weight of a 1x1 conv has shape ``(out, in, 1, 1)`` where ``nn.Linear`` has ``(out, in)``:
same values, same memory order, two extra singleton axes. :func:`linear_to_conv2d_hook` adds
those axes while a stock (``nn.Linear``) state dict is loaded, so a model whose Linear layers
are swapped for :class:`LinearConv2d` loads the original checkpoint unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["LinearConv2d", "linear_to_conv2d_hook"]


def linear_to_conv2d_hook(
    state_dict: dict[str, Any],
    prefix: str,
    local_metadata: dict[str, Any],
    strict: bool,
    missing_keys: list[str],
    unexpected_keys: list[str],
    error_msgs: list[str],
) -> None:
    """Load-state-dict pre-hook: view a 2-D Linear weight ``(out, in)`` as ``(out, in, 1, 1)``.

    Register it on a 1x1-conv module with ``module._register_load_state_dict_pre_hook`` (as
    :class:`LinearConv2d` does in its constructor). PyTorch calls it with that module's
    ``prefix``, so it only touches ``prefix + "weight"``, never e.g. a 2-D embedding table that
    lives elsewhere in the same checkpoint. The replacement is a view (no copy);
    ``load_state_dict`` works on a shallow copy of the caller's dict, so the caller's tensors
    are left as they were. Weights that are already 4-D pass through untouched.
    """
    key = prefix + "weight"
    weight = state_dict.get(key)
    if isinstance(weight, Tensor) and weight.dim() == 2:
        state_dict[key] = weight[:, :, None, None]


class LinearConv2d(nn.Conv2d):
    """A 1x1 ``nn.Conv2d`` that stands in for ``nn.Linear(in_features, out_features, bias)``.

    Input and output are in the ANE layout ``(B, C, 1, S)``. Parameters are named ``weight``
    ``(out, in, 1, 1)`` and ``bias`` ``(out,)``, and an ``nn.Linear`` state dict loads into it
    as is (see :func:`linear_to_conv2d_hook`).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            in_features, out_features, kernel_size=1, bias=bias, device=device, dtype=dtype
        )
        self._register_load_state_dict_pre_hook(linear_to_conv2d_hook)

    @property
    def in_features(self) -> int:
        """Input channels, as on ``nn.Linear``."""
        return self.in_channels

    @property
    def out_features(self) -> int:
        """Output channels, as on ``nn.Linear``."""
        return self.out_channels

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> LinearConv2d:
        """Build a :class:`LinearConv2d` that shares ``linear``'s parameters' memory.

        The new module is created on the ``meta`` device (no allocation, no random init), then
        given ``linear.weight`` viewed as ``(out, in, 1, 1)`` and ``linear.bias`` itself: no
        copy at all, so both modules see later in-place changes to the weights.
        """
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"from_linear expects an nn.Linear, got {type(linear).__name__}")
        conv = cls(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            device="meta",
            dtype=linear.weight.dtype,
        )
        weight = linear.weight
        conv.weight = nn.Parameter(
            weight.detach().view(linear.out_features, linear.in_features, 1, 1),
            requires_grad=weight.requires_grad,
        )
        if linear.bias is not None:
            conv.bias = nn.Parameter(linear.bias.detach(), requires_grad=linear.bias.requires_grad)
        return conv

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )
