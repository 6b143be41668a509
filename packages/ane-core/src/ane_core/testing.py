"""A toy two-layer transformer architecture for tests of ane itself and of plugins.

Why it ships in the package: ane-core's and ane-bench's suites must run with no real
architecture plugin installed, and plugin authors can use it to test CLI integration.
Register it with ``ane_core.plugins.register_plugin(ToyPlugin(), name=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ane_core import hookimpl
from ane_core.architecture import (
    NATIVE,
    Architecture,
    ExportableModel,
    Layout,
    LayoutPackage,
    LayoutPlan,
    ParityCase,
    TensorSpec,
)
from ane_core.layers import LayerNormANE, LinearConv2d, MultiHeadAttentionANE

WIDTH, HEADS, SEQ = 64, 4, 32


class StockBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(WIDTH)
        self.query, self.key, self.value, self.out = (nn.Linear(WIDTH, WIDTH) for _ in range(4))
        self.fc = nn.Linear(WIDTH, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln(x)
        q, k, v = (
            p(h).unflatten(-1, (HEADS, -1)).transpose(1, 2)
            for p in (self.query, self.key, self.value)
        )
        a = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        x = x + self.out(a.transpose(1, 2).flatten(2))
        return x + self.fc(torch.relu(x))


class AneBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln = LayerNormANE(WIDTH)
        self.attn = MultiHeadAttentionANE(WIDTH, HEADS)
        self.fc = LinearConv2d(WIDTH, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln(x))
        return x + self.fc(torch.relu(x))


def _to_ane_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    renamed = {}
    for key, value in state.items():
        for proj in ("query", "key", "value", "out"):
            key = key.replace(f".{proj}.", f".attn.{proj}.")
        renamed[key] = value
    return renamed


@dataclass
class ToyWeights:
    state: dict[str, torch.Tensor]
    source: str
    checkpoint_path: str | None = None
    sha256: str | None = None


class _ToyComponents(Architecture):
    name = "toy"
    description = "two-layer toy transformer (tests only)"

    def sizes(self):
        return ("small",)

    def components(self):
        return ("encoder",)

    def default_size(self):
        return "small"

    def load_weights(self, size, checkpoint, seed=0):
        torch.manual_seed(seed)
        stock = nn.Sequential(StockBlock(), StockBlock())
        for p in stock.parameters():
            nn.init.normal_(p, std=0.2)
        return ToyWeights(state=stock.state_dict(), source=f"random(seed={seed})")

    def build(self, component, variant, weights, **options):
        if variant == "ane":
            module = nn.Sequential(AneBlock(), AneBlock())
            module.load_state_dict(_to_ane_names(weights.state))
            shape = (1, WIDTH, 1, SEQ)
        else:
            module = nn.Sequential(StockBlock(), StockBlock())
            module.load_state_dict(weights.state)
            shape = (1, SEQ, WIDTH)
        example = torch.randn(shape, generator=torch.Generator().manual_seed(1))
        return ExportableModel(
            module=module.eval(),
            inputs=[TensorSpec("x", shape, "toy input")],
            outputs=[TensorSpec("y", shape, "toy output")],
            example_inputs=(example,),
        )

    def parity_inputs(self, component, variant, weights, files=(), **options):
        """One random sequence, the same data in both layouts (the example inputs differ)."""
        x = torch.randn((1, SEQ, WIDTH), generator=torch.Generator().manual_seed(2))
        return [ParityCase("random", (x if variant == "stock" else x.transpose(1, 2)[:, :, None],))]

    def to_reference_layout(self, component, variant, outputs):
        return tuple(o[:, :, 0].transpose(1, 2) if variant == "ane" else o for o in outputs)


class SequenceFirst(nn.Module):
    """An ANE module behind a sequence-first ``(1, S, C)`` interface (the toy app's)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.transpose(1, 2)[:, :, None])[:, :, 0].transpose(1, 2)


TOY_LAYOUTS = (
    NATIVE,
    Layout(
        "flat",
        "one sequence-first package, float32 in and out, for an app that reads float32",
        precision_note="compute precision; the I/O is float32 either way",
    ),
    Layout(
        "bundle",
        "a folder with the ANE and the stock model and a config.json (FP16 only)",
        precisions=("fp16",),
    ),
)
"""Layouts of the toy: one package at the top level, and a folder of two plus a file."""


class ToyLayoutsMixin:
    """The toy's layouts (:data:`TOY_LAYOUTS`), for the layout tests of ane-core and the CLI."""

    def layouts(self):
        return TOY_LAYOUTS

    def layout_plan(self, layout, *, size, name, checkpoint, **options):
        name = name or f"toy-{size or 'small'}"
        if layout == "flat":
            package = LayoutPackage(
                "encoder", f"{name}-flat.mlpackage", self._flat_model, self._flat_reference
            )
            return LayoutPlan(layout, [package])
        if layout == "bundle":
            packages = [
                LayoutPackage(
                    "Ane",
                    "Ane.mlpackage",
                    lambda w: self.build("encoder", "ane", w),
                    lambda w: self._channels_first_reference(w),
                ),
                LayoutPackage(
                    "Stock",
                    "models/Stock.mlpackage",
                    lambda w: self.build("encoder", "stock", w),
                    lambda w: self.build("encoder", "stock", w),
                ),
            ]
            return LayoutPlan(
                layout,
                packages,
                root=name,
                files=lambda w: {"config.json": b'{"width": %d}' % WIDTH},
                notes=lambda w: [f"{name}: toy bundle"],
            )
        return super().layout_plan(layout, size=size, name=name, checkpoint=checkpoint)

    def _flat_model(self, weights):
        ane = self.build("encoder", "ane", weights)
        stock = self.build("encoder", "stock", weights)
        return ExportableModel(
            module=SequenceFirst(ane.module).eval(),
            inputs=[TensorSpec("x", (1, SEQ, WIDTH), "toy input", kind="float32")],
            outputs=[TensorSpec("y", (1, SEQ, WIDTH), "toy output", kind="float32")],
            example_inputs=stock.example_inputs,
        )

    def _flat_reference(self, weights):
        model = self._flat_model(weights)
        model.module = self.build("encoder", "stock", weights).module
        return model

    def _channels_first_reference(self, weights):
        model = self.build("encoder", "ane", weights)
        model.module = SequenceFirstToChannelsFirst(self.build("encoder", "stock", weights).module)
        return model

    def layout_parity_inputs(self, layout, package, weights, files=(), **options):
        (case,) = self.parity_inputs("encoder", "stock", weights)
        if layout == "bundle" and package == "Ane":
            return [ParityCase(case.name, (case.inputs[0].transpose(1, 2)[:, :, None],))]
        return [case]


class SequenceFirstToChannelsFirst(nn.Module):
    """A sequence-first module behind the channels-first ``(1, C, 1, S)`` interface."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x[:, :, 0].transpose(1, 2)).transpose(1, 2)[:, :, None]


class ToyArchitecture(ToyLayoutsMixin, _ToyComponents):
    """The toy: one component in two variants, and the layouts of :data:`TOY_LAYOUTS`."""


class ToyPlugin:
    @hookimpl
    def register_architectures(self, register):
        register(ToyArchitecture())
