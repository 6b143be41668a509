"""Exportable builds of the decoder components: ``cross_kv`` and ``decoder``, both variants.

Why the I/O is named and shaped the same for both variants (only the layouts differ): the
decoding loop (:mod:`whisper_ane.runtime.decoding`) drives any of them, the PyTorch modules or the
exported packages, through these names alone. The loop finds the cache's position axis as
the one axis where ``key_cache`` and ``key_cache_update`` differ.
"""

from __future__ import annotations

import torch
from ane_core.architecture import ExportableModel, TensorSpec
from ane_core.errors import UsageError
from ane_core.layers import MASK_VALUE, chunk_sizes

from whisper_ane.export.alignment_heads import format_alignment_heads
from whisper_ane.export.host_embedding import EMBEDDING_INPUT, ROW_INDEXING, TABLE_ITEM, row_shape
from whisper_ane.export.materialize import component_state, materialize
from whisper_ane.model.decoder import (
    AlignmentHeads,
    TextCrossAttentionKV,
    TextDecoderANE,
    check_alignment_heads,
)
from whisper_ane.model.decoder_stateful import (
    CROSS_STATE_NAMES,
    STATE_NAMES,
    TextDecoderANEStateful,
    TextDecoderANEStatefulCrossKV,
)
from whisper_ane.model.decoder_stock import StockCrossAttentionKV, StockTextDecoderStep
from whisper_ane.weights.source import LoadedWeights

UPDATE_NAMES = ("key_cache_update", "value_cache_update")
"""The outputs an external-cache decoder returns for the caller to write into its cache."""

EXAMPLE_POSITION = 3
"""Cache position used in the example inputs of a trace (any position traces the same graph)."""

EXAMPLE_TOKEN = 50257
"""Token of the example inputs (``<|endoftext|>`` of the English-only vocabulary)."""


def _decoder_module(
    factory, weights: LoadedWeights, keep=None, *, without_cross_kv: bool = False
) -> torch.nn.Module:
    """Build on the meta device and adopt the ``decoder.`` tensors (``keep`` filters names).

    ``without_cross_kv``: leave out every block's cross-attention key and value projections,
    which a decoder taking ``cross_k``/``cross_v`` never runs: neither read nor held (for
    medium 0.2 GB of float32, for large 0.4 GB, during the decoder's conversion)."""
    drop = ()
    if without_cross_kv:
        keep = _not_cross_kv
        n_layer = weights.dims.n_text_layer
        drop = [f"blocks.{i}.cross_attn.{p}" for i in range(n_layer) for p in ("key", "value")]
    return materialize(factory, component_state(weights, "decoder.", keep), drop)


def _not_cross_kv(name: str) -> bool:
    return not _is_cross_kv(name)


def _is_cross_kv(name: str) -> bool:
    return ".cross_attn.key." in name or ".cross_attn.value." in name


def _layouts(variant: str, dims) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Shapes of the encoder output, one cross K/V tensor, and one self-attention cache."""
    L, C = dims.n_text_layer, dims.n_text_state
    if variant == "ane":
        return (1, C, 1, dims.n_audio_ctx), (L, C, 1, dims.n_audio_ctx), (L, C, 1, dims.n_text_ctx)
    return (1, dims.n_audio_ctx, C), (L, dims.n_audio_ctx, C), (L, dims.n_text_ctx, C)


TRACE_FRAMES = 8
"""Audio frames ``cross_kv`` is traced from. Both variants project each frame on its own, so
the graph is the same for any number of frames: tracing from 8 instead of 1500 skips a
forward pass of every layer's K/V projections (see ``ExportableModel.trace_inputs``)."""


def _first_frames(features: torch.Tensor, variant: str) -> torch.Tensor:
    """The first :data:`TRACE_FRAMES` frames of an encoder output in ``variant``'s layout."""
    return features[..., :TRACE_FRAMES] if variant == "ane" else features[:, :TRACE_FRAMES]


def build_cross_kv(variant: str, weights: LoadedWeights, **options) -> ExportableModel:
    """Encoder output to the cross-attention keys and values of every decoder layer."""
    _no_options("cross_kv", options)
    d = weights.dims
    cls = TextCrossAttentionKV if variant == "ane" else StockCrossAttentionKV
    module = _decoder_module(lambda: cls(d.n_text_state, d.n_text_layer), weights, _is_cross_kv)
    features_shape, kv_shape, _ = _layouts(variant, d)
    example = torch.randn(features_shape, generator=torch.Generator().manual_seed(0))
    return ExportableModel(
        module=module,
        inputs=[TensorSpec("encoder_output", features_shape, "encoder features, one window")],
        outputs=[
            TensorSpec("cross_k", kv_shape, "cross-attention keys of every decoder layer"),
            TensorSpec("cross_v", kv_shape, "cross-attention values of every decoder layer"),
        ],
        example_inputs=(example,),
        metadata={
            "n_text_layer": str(d.n_text_layer),
            "n_text_state": str(d.n_text_state),
            "call_unit": "window",
        },
        trace_inputs=(_first_frames(example, variant),),
    )


def build_decoder(
    variant: str,
    weights: LoadedWeights,
    *,
    split_logits: bool = True,
    stateful: bool = False,
    alignment_heads: AlignmentHeads = (),
    cross_kv_state: bool = False,
    host_embedding: bool = False,
    **options,
) -> ExportableModel:
    """One decoding step with a static key/value cache (see :mod:`whisper_ane.model.decoder`).

    ``split_logits`` (ANE only): logits as chunks ``logits_0..N`` below the ANE's 16384
    limit (default), or one ``logits`` tensor. The stock decoder always has one ``logits``.
    ``stateful`` (ANE only): the caches stay inside the model as Core ML state
    (:mod:`whisper_ane.model.decoder_stateful`); the model then takes no cache and returns only
    the logits. ``alignment_heads``: ``(layer, head)`` pairs whose post-softmax
    cross-attention weights come out as ``alignment_weights`` ``(1, H_a, 1, n_audio_ctx)``
    (both variants; none by default here, see :mod:`whisper_ane.export.alignment_heads`).
    ``cross_kv_state`` (with ``stateful``): the cross-attention K/V are states too, written
    once per window by the caller (:class:`~whisper_ane.model.decoder_stateful.
    TextDecoderANEStatefulCrossKV`).
    ``host_embedding`` (both variants, stateful too): the step takes the token's embedding
    row ``token_embedding`` instead of the id ``token`` (see
    :mod:`whisper_ane.export.host_embedding`).
    """
    _no_options("decoder", options)
    alignment_heads = checked_alignment_heads(alignment_heads, weights)
    if cross_kv_state and not stateful:
        raise UsageError(
            "whisper --cross-kv state keeps the cross-attention K/V as Core ML state, which "
            "needs the stateful decoder.",
            "Add --stateful (with --target macOS15 or newer), or use --cross-kv input.",
        )
    if stateful:
        if variant != "ane":
            raise UsageError("only the ANE decoder has a stateful variant.", "Use --arch ane.")
        return build_stateful_decoder(
            weights,
            split_logits=split_logits,
            alignment_heads=alignment_heads,
            cross_kv_state=cross_kv_state,
            host_embedding=host_embedding,
        )
    d = weights.dims
    L, C, S = d.n_text_layer, d.n_text_state, d.n_text_ctx
    _, kv_shape, cache_shape = _layouts(variant, d)
    if variant == "ane":
        module = _decoder_module(
            lambda: TextDecoderANE(
                d.n_vocab,
                S,
                C,
                d.n_text_head,
                L,
                split_logits=split_logits,
                alignment_heads=alignment_heads,
                host_embedding=host_embedding,
            ),
            weights,
            without_cross_kv=True,
        )
        update_shape: tuple[int, ...] = (L, C, 1, 1)
        sizes = chunk_sizes(d.n_vocab) if split_logits else [d.n_vocab]
        logits = [
            TensorSpec(
                f"logits_{i}" if split_logits else "logits",
                (1, n, 1, 1),
                f"logits of tokens {sum(sizes[:i])}..{sum(sizes[: i + 1]) - 1}",
            )
            for i, n in enumerate(sizes)
        ]
    else:
        module = _decoder_module(
            lambda: StockTextDecoderStep(
                d.n_vocab,
                S,
                C,
                d.n_text_head,
                L,
                alignment_heads=alignment_heads,
                host_embedding=host_embedding,
            ),
            weights,
            without_cross_kv=True,
        )
        update_shape = (L, 1, C)
        logits = [TensorSpec("logits", (1, 1, d.n_vocab), "logits of every token")]
    update_mask = torch.zeros(1, S)
    update_mask[0, EXAMPLE_POSITION] = 1.0
    padding_mask = torch.full((1, S), MASK_VALUE)
    padding_mask[0, : EXAMPLE_POSITION + 1] = 0.0
    token_spec, token_example = _token_input(module, variant, host_embedding)
    example = (
        token_example,
        _zeros(cache_shape),
        _zeros(cache_shape),
        update_mask,
        padding_mask,
        _zeros(kv_shape),
        _zeros(kv_shape),
    )
    return ExportableModel(
        module=module,
        inputs=[
            token_spec,
            TensorSpec("key_cache", cache_shape, "self-attention keys, all layers and positions"),
            TensorSpec(
                "value_cache", cache_shape, "self-attention values, all layers and positions"
            ),
            TensorSpec("kv_cache_update_mask", (1, S), "one-hot: the current position"),
            TensorSpec(
                "key_padding_mask", (1, S), f"additive: 0 up to the position, {MASK_VALUE:g} after"
            ),
            TensorSpec("cross_k", kv_shape, "cross-attention keys (from cross_kv)"),
            TensorSpec("cross_v", kv_shape, "cross-attention values (from cross_kv)"),
        ],
        outputs=[
            *logits,
            TensorSpec("key_cache_update", update_shape, "this position's keys, every layer"),
            TensorSpec("value_cache_update", update_shape, "this position's values, every layer"),
            *_alignment_specs(alignment_heads, d.n_audio_ctx),
        ],
        example_inputs=example,
        metadata={
            "n_vocab": str(d.n_vocab),
            "n_text_ctx": str(S),
            "n_text_layer": str(L),
            "n_text_state": str(C),
            "n_text_head": str(d.n_text_head),
            "logits_outputs": ",".join(spec.name for spec in logits),
            "alignment_heads": format_alignment_heads(alignment_heads),
            "embedding": "host" if host_embedding else "model",
            "call_unit": "token",
        },
    )


def _token_input(
    module: torch.nn.Module, variant: str, host_embedding: bool
) -> tuple[TensorSpec, torch.Tensor]:
    """The first input's spec and example: the token id, or (``host_embedding``) its row of
    the token embedding in ``variant``'s layout (the example token's real row)."""
    token = min(EXAMPLE_TOKEN, module.token_embedding.num_embeddings - 1)
    if not host_embedding:
        spec = TensorSpec("token", (1,), "token id at this position", kind="int")
        return spec, torch.tensor([token], dtype=torch.int32)
    table = module.token_embedding.weight
    shape = row_shape(variant, table.shape[1])
    spec = TensorSpec(
        EMBEDDING_INPUT,
        shape,
        "the token's embedding row at this position: "
        f"{ROW_INDEXING[variant]} (table: package item {TABLE_ITEM})",
    )
    return spec, table[token].detach().reshape(shape).clone()


ALIGNMENT_OUTPUT = "alignment_weights"


def _alignment_specs(heads: AlignmentHeads, n_audio_ctx: int) -> list[TensorSpec]:
    """The ``alignment_weights`` output, if there are alignment heads."""
    if not heads:
        return []
    shape = (1, len(heads), 1, n_audio_ctx)
    return [
        TensorSpec(
            ALIGNMENT_OUTPUT,
            shape,
            "post-softmax cross-attention weights of the alignment heads for this position, "
            f"head i of axis 1 being (layer, head) {format_alignment_heads(heads)} (metadata "
            "alignment_heads), for word timestamps",
        )
    ]


def checked_alignment_heads(heads: AlignmentHeads, weights: LoadedWeights) -> AlignmentHeads:
    """``heads`` checked against the model, or a one-line usage error naming the limits."""
    d = weights.dims
    try:
        return check_alignment_heads(heads, d.n_text_layer, d.n_text_head)
    except ValueError as error:
        raise UsageError(
            f"whisper --alignment-heads: {error}.",
            f"Name heads as LAYER:HEAD with LAYER < {d.n_text_layer} and HEAD < {d.n_text_head}.",
        ) from None


def build_stateful_decoder(
    weights: LoadedWeights,
    *,
    split_logits: bool = True,
    alignment_heads: AlignmentHeads = (),
    cross_kv_state: bool = False,
    host_embedding: bool = False,
    cache_dtype: torch.dtype = torch.float16,
) -> ExportableModel:
    """The ANE decoder step with ``key_cache``/``value_cache`` as Core ML states
    (``cross_kv_state``: ``cross_k``/``cross_v`` too).

    Same inputs as :func:`build_decoder` less those kept as state, outputs the logits (and
    the alignment weights) only.
    ``cache_dtype`` float32 is for eager PyTorch checks; exports need float16 (Core ML).
    """
    d = weights.dims
    L, C, S = d.n_text_layer, d.n_text_state, d.n_text_ctx
    cls = TextDecoderANEStatefulCrossKV if cross_kv_state else TextDecoderANEStateful
    extra = {"n_audio_ctx": d.n_audio_ctx} if cross_kv_state else {}
    module = _decoder_module(
        lambda: cls(
            d.n_vocab,
            S,
            C,
            d.n_text_head,
            L,
            split_logits=split_logits,
            alignment_heads=alignment_heads,
            host_embedding=host_embedding,
            cache_dtype=cache_dtype,
            **extra,
        ),
        weights,
        without_cross_kv=True,
    )
    module.reset_cache()
    stepper = build_decoder(
        "ane",
        weights,
        split_logits=split_logits,
        alignment_heads=alignment_heads,
        host_embedding=host_embedding,
    )
    stepper.module = None  # only its specs and example inputs are reused
    state_names = (*STATE_NAMES, *CROSS_STATE_NAMES) if cross_kv_state else STATE_NAMES
    cache_specs = {spec.name: spec for spec in stepper.inputs if spec.name in state_names}
    kept = [i for i, spec in enumerate(stepper.inputs) if spec.name not in state_names]
    outputs = [spec for spec in stepper.outputs if spec.name not in UPDATE_NAMES]
    return ExportableModel(
        module=module,
        inputs=[stepper.inputs[i] for i in kept],
        outputs=outputs,
        example_inputs=tuple(stepper.example_inputs[i] for i in kept),
        metadata={**stepper.metadata, "stateful": ",".join(state_names)},
        states=[cache_specs[name] for name in state_names],
    )


def _zeros(shape: tuple[int, ...]) -> torch.Tensor:
    """A zero tensor of ``shape`` that holds one value (a broadcast view): the example caches
    and cross K/V only give the trace their shapes, and as real tensors they would hold
    hundreds of megabytes through a big decoder's conversion (0.36 GiB for medium)."""
    return torch.zeros(1).expand(shape)


def _no_options(component: str, options: dict) -> None:
    if options:
        raise UsageError(
            f"whisper {component} takes no build option {', '.join(sorted(options))}.",
            "Only the decoder takes split_logits, stateful, alignment_heads, cross_kv_state and "
            "host_embedding.",
        )
