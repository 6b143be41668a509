"""Whisper's exportable components by name, and the one function that builds any of them.

Why here and not on the architecture: the runtime (PyTorch backends, parity inputs, package
export for ``--backend mil``) builds components too, and it sits below the architecture in
the layers (see the package README), so the builders live in the export layer that both use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ane_core.architecture import ExportableModel
from ane_core.build_options import BuildOption
from ane_core.errors import UsageError

from whisper_ane.export.alignment_heads import ALIGNMENT_HEADS_OPTION, resolve_alignment_heads
from whisper_ane.export.decoder import build_cross_kv, build_decoder
from whisper_ane.export.encoder import build_encoder
from whisper_ane.export.host_embedding import EMBEDDING_OPTION
from whisper_ane.weights.source import LoadedWeights

BUILDERS: dict[str, Callable[..., ExportableModel]] = {
    "encoder": build_encoder,
    "cross_kv": build_cross_kv,
    "decoder": build_decoder,
}

COMPONENTS: tuple[str, ...] = tuple(BUILDERS)
"""The components in the order one window needs them: encoder, cross_kv, decoder."""

STATEFUL_COMPONENTS: dict[str, tuple[str, ...]] = {"ane": ("decoder",), "stock": ()}
"""``--stateful``: per variant, the components that keep a cache as Core ML state."""

LOGITS_OPTION = BuildOption(
    name="logits",
    default="chunked",
    choices=("chunked", "single"),
    help="Decoder logits as chunks logits_0..N, each under the ANE's 16384 limit on one "
    "dimension (default), or as one logits tensor (same values).",
)


CROSS_KV_OPTION = BuildOption(
    name="cross_kv",
    default="input",
    choices=("input", "state"),
    help="With --stateful: pass the decoder's cross-attention K/V at every token (input), or "
    "keep them as Core ML state that the app writes once per 30 s window (state).",
)

BUILD_OPTIONS: tuple[BuildOption, ...] = (
    LOGITS_OPTION,
    ALIGNMENT_HEADS_OPTION,
    CROSS_KV_OPTION,
    EMBEDDING_OPTION,
)
"""Whisper's build options (``ane export whisper --logits single --alignment-heads none``)."""


def build_component(
    component: str, variant: str, weights: LoadedWeights, **options: Any
) -> ExportableModel:
    """Build ``component`` in ``variant`` (``ane`` or ``stock``); ``options`` are the build
    options (``logits``, ``alignment_heads``, ``cross_kv``, ``embedding``: see
    :data:`BUILD_OPTIONS`) and, for the decoder,
    ``stateful``."""
    builder = BUILDERS.get(component)
    if builder is None:
        raise UsageError(
            f"whisper has no component {component!r}.", f"Use one of: {', '.join(BUILDERS)}."
        )
    logits = options.pop(LOGITS_OPTION.name, LOGITS_OPTION.default)
    heads = options.pop(ALIGNMENT_HEADS_OPTION.name, ALIGNMENT_HEADS_OPTION.default)
    cross_kv = options.pop(CROSS_KV_OPTION.name, CROSS_KV_OPTION.default)
    embedding = options.pop(EMBEDDING_OPTION.name, EMBEDDING_OPTION.default)
    if component == "decoder":
        options["host_embedding"] = embedding == "host"
        options["split_logits"] = logits == "chunked"
        options["alignment_heads"] = resolve_alignment_heads(heads, weights)
        options["cross_kv_state"] = cross_kv == "state"
    return builder(variant, weights, **options)
