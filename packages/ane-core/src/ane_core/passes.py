"""coremltools graph passes of our own, added to the default conversion pipeline.

``fold_affine_into_layer_norm``: coremltools fuses the channel LayerNorm pattern
(:class:`ane_core.layers.LayerNormANE`) into a MIL ``layer_norm`` only when the affine step
comes first, ``(x + b) * w`` (ml-ane-transformers' order, which is not ``nn.LayerNorm``).
With ``nn.LayerNorm``'s ``x_hat * w + b`` it leaves a gamma-less ``layer_norm`` followed by a
``batch_norm`` holding ``w`` and ``b``: one extra op per norm for the Neural Engine to run.
This pass folds that ``batch_norm`` into the ``layer_norm``'s gamma and beta, which computes
the same values (``batch_norm`` with mean 0, variance 1 is ``x * w / sqrt(1 + eps) + b``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ane_core._coremltools import coremltools

PASS_NAME = "ane::fold_affine_into_layer_norm"
_AFTER = "common::fuse_elementwise_to_batchnorm"
_registered = False


def _register() -> None:
    global _registered
    if _registered:
        return
    coremltools()
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil.passes.graph_pass import AbstractGraphPass
    from coremltools.converters.mil.mil.passes.helper import block_context_manager
    from coremltools.converters.mil.mil.passes.pass_registry import register_pass

    def foldable(bn: Any) -> bool:
        ln = bn.x.op
        if ln is None or ln.op_type != "layer_norm" or ln.gamma is not None or ln.beta is not None:
            return False
        rank = ln.x.rank
        if rank < 2 or [a % rank for a in ln.axes.val.tolist()] != [1]:
            return False  # batch_norm scales axis 1: only a norm over exactly that axis matches
        if len(ln.outputs[0].child_ops) != 1 or ln.outputs[0] in ln.enclosing_block.outputs:
            return False
        return bn.mean.val is not None and bn.variance.val is not None

    @block_context_manager
    def fold_block(block: Any) -> None:
        for op in list(block.operations):
            for inner in op.blocks:
                fold_block(inner)
            if op.op_type != "batch_norm" or op.enclosing_block is None or not foldable(op):
                continue
            ln = op.x.op
            dtype = ln.x.val.dtype if ln.x.val is not None else np.float32
            channels = op.mean.val.shape[0]
            gamma = op.gamma.val if op.gamma is not None else np.ones(channels)
            beta = op.beta.val if op.beta is not None else np.zeros(channels)
            scale = gamma / np.sqrt(op.variance.val.astype(np.float64) + op.epsilon.val)
            shift = beta - op.mean.val * scale
            out_dtype = np.float16 if ln.x.dtype.__name__ == "fp16" else dtype
            folded = mb.layer_norm(
                x=ln.x,
                axes=ln.axes,
                gamma=scale.astype(out_dtype),
                beta=shift.astype(out_dtype),
                epsilon=ln.epsilon,
                before_op=op,
                name=op.name,
            )
            block.replace_uses_of_var_after_op(anchor_op=op, old_var=op.outputs[0], new_var=folded)
            block.remove_ops([op, ln])

    @register_pass(namespace="ane")
    class fold_affine_into_layer_norm(AbstractGraphPass):  # noqa: N801 (coremltools names passes so)
        def apply(self, prog: Any) -> None:
            for function in prog.functions.values():
                fold_block(function)

    _registered = True


def conversion_pipeline() -> Any:
    """coremltools' default pipeline with our passes inserted where they belong."""
    _register()
    pipeline = coremltools().PassPipeline.DEFAULT
    index = pipeline.passes.index(_AFTER) + 1
    pipeline.insert_pass(index, PASS_NAME)
    return pipeline
