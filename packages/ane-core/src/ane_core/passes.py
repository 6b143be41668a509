"""coremltools graph passes of our own, added to the default conversion pipeline.

``fold_affine_into_layer_norm``: coremltools fuses the channel LayerNorm pattern
(:class:`ane_core.layers.LayerNormANE`) into a MIL ``layer_norm`` only when the affine step
comes first, ``(x + b) * w`` (ml-ane-transformers' order, which is not ``nn.LayerNorm``).
With ``nn.LayerNorm``'s ``x_hat * w + b`` it leaves a gamma-less ``layer_norm`` followed by a
``batch_norm`` holding ``w`` and ``b``: one extra op per norm for the Neural Engine to run.
This pass folds that ``batch_norm`` into the ``layer_norm``'s gamma and beta, which computes
the same values (``batch_norm`` with mean 0, variance 1 is ``x * w / sqrt(1 + eps) + b``).

``add_fp16_cast`` (FP16 exports only): coremltools' own pass of that name, with a faster
overflow check. Before casting an op to float16, coremltools checks that none of its float32
constants exceeds the float16 range, with ``np.where`` on ``|x|``: three full-size copies of
every weight, for every op that reads it. On a Whisper decoder that check alone took a
quarter of the conversion time (17 s of 69 s for small). Ours answers the common case, every
value within range, with one ``max`` and one ``min`` (no copy), remembers the answer per
constant, and falls back to coremltools' exact rule only when a value is out of range. The
decision per op is the same, so the converted program is too.

Dropped: ``common::add_int16_cast``. On iOS17/macOS14 and later targets coremltools casts
integer values computed inside the program to int16 before ops that accept it (a ``gather``'s
indices), one ``cast`` pair each. A decoder that computes a token's index into its vocabulary
chunks (``whisper_ane.model.decoder.lookup_token``) would get six ``cast`` ops from it on a
macOS15 target; int16 indices save nothing worth a cast on scalars.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ane_core._coremltools import coremltools

PASS_NAME = "ane::fold_affine_into_layer_norm"
_AFTER = "common::fuse_elementwise_to_batchnorm"
FP16_CAST_PASS = "ane::add_fp16_cast"
_DROPPED = "common::add_int16_cast"
_FP16_MAX = 65504.0
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

    from coremltools.converters.mil.mil.passes.defs.quantization import (
        add_fp16_cast as coremltools_add_fp16_cast,
    )

    verdicts: dict[int, tuple[Any, bool]] = {}

    def overflows(value: Any) -> bool:
        key = id(value)
        if key in verdicts and verdicts[key][0] is value:
            return verdicts[key][1]
        array = np.asarray(value)
        if array.size == 0 or max(float(array.max()), -float(array.min())) <= _FP16_MAX:
            verdict = False
        else:  # coremltools' rule: finite values (|x| < 1e38) beyond the float16 range
            magnitude = np.abs(array)
            verdict = bool(np.max(magnitude[magnitude < 1e38], initial=0.0) > _FP16_MAX)
        verdicts[key] = (value, verdict)
        return verdict

    @register_pass(namespace="ane")
    class add_fp16_cast(coremltools_add_fp16_cast):  # noqa: N801 (coremltools names passes so)
        @staticmethod
        def fp16_overflow(op: Any) -> bool:
            for inputs in op.inputs.values():
                for var in inputs if isinstance(inputs, (list, tuple)) else (inputs,):
                    if (
                        var.op is not None
                        and var.op.op_type == "const"
                        and var.is_tensor_or_scalar_of(dtype="fp32")
                        and overflows(var.op.val.val)
                    ):
                        return True
            return False

        def apply(self, prog: Any) -> None:
            try:
                super().apply(prog)
            finally:
                verdicts.clear()

    _registered = True


def conversion_pipeline(fp16: bool) -> Any:
    """coremltools' default pipeline with our passes inserted where they belong."""
    _register()
    pipeline = coremltools().PassPipeline.DEFAULT
    index = pipeline.passes.index(_AFTER) + 1
    pipeline.insert_pass(index, PASS_NAME)
    passes = pipeline.passes
    if fp16:
        passes[passes.index("common::add_fp16_cast")] = FP16_CAST_PASS
    pipeline.passes = [name for name in passes if name != _DROPPED]
    return pipeline
