"""Read a CTranslate2 Whisper model directory (``model.bin`` + ``config.json``).

Why: faster-whisper style CTranslate2 directories are a common way Whisper weights are
shipped (including our offline test weights), and they need neither the ``ctranslate2``
package nor a network. :mod:`whisper_ane.weights.ct2_format` finds where each variable
lies (checked against the file's length); this module maps the variables onto
openai-whisper's names and reads only those, one at a time, so peak memory stays near one
float32 copy of the model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from ane_core.errors import WeightsError
from ane_core.file_checks import refuse_lfs_pointer
from whisper.model import ModelDimensions

from whisper_ane.weights.ct2_format import (
    BF16,
    DTYPES,
    INTEGER,
    ConcatFile,
    Truncated,
    Variable,
    model_files,
    parse_index,
    truncated_error,
)
from whisper_ane.weights.lazy import LazyStateDict

# ---------------------------------------------------------------------------------------
# Name mapping: openai-whisper state-dict suffix -> (CTranslate2 suffix, part, parts).
# CTranslate2 fuses projections: a variable with ``parts`` > 1 holds that many row blocks
# and this name is block ``part`` (self-attention q,k,v = 0,1,2 of 3; cross-attention
# k,v = 0,1 of 2). Whisper's key projections have no bias, so the k block of a fused
# bias is dropped: a bias on k adds q.b_k to every logit of a query alike, which the
# softmax cancels, so dropping it is exact whatever the file holds.
# ---------------------------------------------------------------------------------------
_SELF_ATTENTION_BLOCK: dict[str, tuple[str, int, int]] = {
    "attn_ln.weight": ("self_attention/layer_norm/gamma", 0, 1),
    "attn_ln.bias": ("self_attention/layer_norm/beta", 0, 1),
    "attn.query.weight": ("self_attention/linear_0/weight", 0, 3),
    "attn.query.bias": ("self_attention/linear_0/bias", 0, 3),
    "attn.key.weight": ("self_attention/linear_0/weight", 1, 3),
    "attn.value.weight": ("self_attention/linear_0/weight", 2, 3),
    "attn.value.bias": ("self_attention/linear_0/bias", 2, 3),
    "attn.out.weight": ("self_attention/linear_1/weight", 0, 1),
    "attn.out.bias": ("self_attention/linear_1/bias", 0, 1),
    "mlp_ln.weight": ("ffn/layer_norm/gamma", 0, 1),
    "mlp_ln.bias": ("ffn/layer_norm/beta", 0, 1),
    "mlp.0.weight": ("ffn/linear_0/weight", 0, 1),
    "mlp.0.bias": ("ffn/linear_0/bias", 0, 1),
    "mlp.2.weight": ("ffn/linear_1/weight", 0, 1),
    "mlp.2.bias": ("ffn/linear_1/bias", 0, 1),
}
_CROSS_ATTENTION_BLOCK: dict[str, tuple[str, int, int]] = {
    "cross_attn_ln.weight": ("attention/layer_norm/gamma", 0, 1),
    "cross_attn_ln.bias": ("attention/layer_norm/beta", 0, 1),
    "cross_attn.query.weight": ("attention/linear_0/weight", 0, 1),
    "cross_attn.query.bias": ("attention/linear_0/bias", 0, 1),
    "cross_attn.key.weight": ("attention/linear_1/weight", 0, 2),
    "cross_attn.value.weight": ("attention/linear_1/weight", 1, 2),
    "cross_attn.value.bias": ("attention/linear_1/bias", 1, 2),
    "cross_attn.out.weight": ("attention/linear_2/weight", 0, 1),
    "cross_attn.out.bias": ("attention/linear_2/bias", 0, 1),
}
_TOP_LEVEL: dict[str, str] = {
    "encoder.conv1.weight": "encoder/conv1/weight",
    "encoder.conv1.bias": "encoder/conv1/bias",
    "encoder.conv2.weight": "encoder/conv2/weight",
    "encoder.conv2.bias": "encoder/conv2/bias",
    "encoder.positional_embedding": "encoder/position_encodings/encodings",
    "encoder.ln_post.weight": "encoder/layer_norm/gamma",
    "encoder.ln_post.bias": "encoder/layer_norm/beta",
    "decoder.token_embedding.weight": "decoder/embeddings/weight",
    "decoder.positional_embedding": "decoder/position_encodings/encodings",
    "decoder.ln.weight": "decoder/layer_norm/gamma",
    "decoder.ln.bias": "decoder/layer_norm/beta",
}


def name_map(n_audio_layer: int, n_text_layer: int) -> dict[str, tuple[str, int, int]]:
    """Every openai-whisper state-dict name -> (CTranslate2 variable, part, parts)."""
    mapping = {ours: (theirs, 0, 1) for ours, theirs in _TOP_LEVEL.items()}
    for side, layers, block in (
        ("encoder", n_audio_layer, _SELF_ATTENTION_BLOCK),
        ("decoder", n_text_layer, _SELF_ATTENTION_BLOCK | _CROSS_ATTENTION_BLOCK),
    ):
        for i in range(layers):
            for ours, (theirs, part, parts) in block.items():
                mapping[f"{side}.blocks.{i}.{ours}"] = (f"{side}/layer_{i}/{theirs}", part, parts)
    return mapping


class Ct2Checkpoint:
    """An open CTranslate2 Whisper directory: dimensions from the header, tensors on demand.

    Use as a context manager; :meth:`state_dict` reads the mapped variables.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        files = model_files(directory)
        self.path = files[0] if len(files) == 1 else directory
        self.alignment_heads = _read_config(directory)
        self._file = ConcatFile(files)
        try:
            index = parse_index(self._file, self.path)
            self.spec, self.revision = index.spec, index.revision
            self.variables, self.aliases = index.variables, index.aliases
            self.dims = self._dims()
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> Ct2Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def sha256(self) -> str:
        """SHA-256 of ``model.bin`` as read (of the parts' concatenation for a split file)."""
        return self._file.sha256()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """All weights as float32 tensors under openai-whisper names (int8 dequantized)."""
        return dict(self.lazy_state_dict())

    def lazy_state_dict(self) -> LazyStateDict:
        """The weights under openai-whisper names, each read from the file when first asked
        for (float32, int8 dequantized). The file stays open while the dict lives."""
        mapping = name_map(self.dims.n_audio_layer, self.dims.n_text_layer)
        shapes = {ours: self._shape_of(*where) for ours, where in mapping.items()}
        return LazyStateDict(
            shapes, lambda ours: torch.from_numpy(self._rows(*mapping[ours])), str(self.path)
        )

    def _shape_of(self, name: str, part: int, parts: int) -> tuple[int, ...]:
        """Shape of :meth:`_rows`' result, from the header (no data read; checked there)."""
        var, rows, _ = self._layout(name, part, parts)
        shape = tuple(var.shape)
        return (rows.stop - rows.start, *shape[1:]) if parts > 1 else shape

    # -- internals ---------------------------------------------------------------------

    def _variable(self, name: str) -> Variable:
        seen = set()
        while name in self.aliases and name not in seen:
            seen.add(name)
            name = self.aliases[name]
        try:
            return self.variables[name]
        except KeyError:
            raise WeightsError(
                f"{self.path} has no variable {name}; it is not a complete CTranslate2 Whisper model.",
                "Re-convert it with ct2-transformers-converter, or pass another checkpoint.",
            ) from None

    def _raw(self, var: Variable) -> np.ndarray:
        try:
            data = self._file.read(var.offset, var.n_bytes)
        except Truncated:
            raise truncated_error(self.path) from None
        return np.frombuffer(data, dtype=DTYPES[var.dtype]).reshape(var.shape)

    def _scalar(self, name: str, default: int) -> int:
        if name not in self.variables:
            return default
        values = self._raw(self.variables[name]).reshape(-1)
        if values.size != 1:
            raise WeightsError(
                f"{self.path}: {name} holds {values.size} values, not one number.",
                "Re-convert the model.",
            )
        return int(values[0])

    def _layout(self, name: str, part: int, parts: int) -> tuple[Variable, slice, Variable | None]:
        """Where :meth:`_rows` finds its data, checked against the header alone (so a model
        that cannot load fails when opened, before any tensor is read): the variable, the row
        block of ``part`` of ``parts`` fused projections, and the scale variable of an
        integer tensor."""
        var = self._variable(name)
        total_rows = var.shape[0] if var.shape else 1
        rows = slice(None)  # also fits 0-d variables (a global int16 scale)
        if parts > 1:
            if not var.shape or var.shape[0] % parts:
                raise WeightsError(
                    f"{self.path}: {var.name} has shape {var.shape}, which does not split into "
                    f"{parts} fused projections.",
                    "Re-convert the model.",
                )
            n = var.shape[0] // parts
            rows = slice(part * n, (part + 1) * n)
        if var.dtype not in INTEGER:
            return var, rows, None
        # CTranslate2 stores round(w * scale) with a per-row (int8) or global (int16) scale.
        scale_name = f"{var.name}_scale"
        if scale_name not in self.variables:
            raise WeightsError(
                f"{self.path}: {var.name} is an integer tensor without {scale_name} (unsupported quantization).",
                "Convert the model with --quantization float16 or float32.",
            )
        scale = self.variables[scale_name]
        count = int(np.prod(scale.shape)) if scale.shape else 1
        if len(scale.shape) > 1 or count not in (1, total_rows):  # global, or one per row
            raise WeightsError(
                f"{self.path}: {scale_name} holds {count} scales for {total_rows} rows.",
                "Re-convert the model.",
            )
        return var, rows, scale

    def _rows(self, name: str, part: int, parts: int) -> np.ndarray:
        """Row block ``part`` of ``parts`` of a variable, as a fresh float32 array."""
        var, rows, scale_var = self._layout(name, part, parts)
        raw = self._raw(var)
        if parts > 1:
            raw = raw[rows]
        if var.dtype == BF16:
            return (raw.astype(np.uint32) << 16).view(np.float32)
        values = raw.astype(np.float32)
        if scale_var is not None:
            scale = self._raw(scale_var).astype(np.float32)
            if scale.size > 1:
                scale = scale[rows].reshape(-1, *[1] * (values.ndim - 1))
            values /= scale
        return values

    def _dims(self) -> ModelDimensions:
        n_audio_state, n_mels, _ = _shape(self._variable("encoder/conv1/weight"), 3, self.path)
        n_audio_ctx, _ = _shape(
            self._variable("encoder/position_encodings/encodings"), 2, self.path
        )
        n_vocab, n_text_state = _shape(self._variable("decoder/embeddings/weight"), 2, self.path)
        n_text_ctx, _ = _shape(self._variable("decoder/position_encodings/encodings"), 2, self.path)
        return ModelDimensions(
            n_mels=n_mels,
            n_audio_ctx=n_audio_ctx,
            n_audio_state=n_audio_state,
            n_audio_head=self._scalar("encoder/num_heads", n_audio_state // 64),
            n_audio_layer=self._count_layers("encoder"),
            n_vocab=n_vocab,
            n_text_ctx=n_text_ctx,
            n_text_state=n_text_state,
            n_text_head=self._scalar("decoder/num_heads", n_text_state // 64),
            n_text_layer=self._count_layers("decoder"),
        )

    def _count_layers(self, side: str) -> int:
        found = {
            int(m.group(1)) for n in self.variables if (m := re.match(rf"{side}/layer_(\d+)/", n))
        }
        if found != set(range(len(found))):
            raise WeightsError(
                f"{self.path} has {side} layers {sorted(found)}, not 0..N-1.",
                "Re-convert the model.",
            )
        return len(found)


def _shape(var: Variable, rank: int, path: Path) -> tuple[int, ...]:
    if len(var.shape) != rank:
        raise WeightsError(
            f"{path}: {var.name} has shape {var.shape}, expected rank {rank}.",
            "Re-convert the model.",
        )
    return var.shape


def _read_config(directory: Path) -> tuple[tuple[int, int], ...] | None:
    """The ``alignment_heads`` (layer, head) pairs from config.json, which must exist."""
    config = directory / "config.json"
    if not config.is_file():
        raise WeightsError(
            f"{directory} has no config.json, so it is not a complete CTranslate2 model directory.",
            "Copy the whole directory the converter wrote.",
        )
    refuse_lfs_pointer(config)
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        heads = data.get("alignment_heads")
        return None if heads is None else tuple((int(layer), int(head)) for layer, head in heads)
    except (ValueError, TypeError, AttributeError, OverflowError) as e:
        raise WeightsError(
            f"{config} is not valid CTranslate2 config JSON ({e}).", "Restore it."
        ) from None
