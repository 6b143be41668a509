"""Read a CTranslate2 Whisper model directory (``model.bin`` + ``config.json``).

Why: faster-whisper style CTranslate2 directories are a common way Whisper weights are
shipped (including our offline test weights), and they need neither the ``ctranslate2``
package nor a network. The binary layout (version 6, little-endian) is::

    u32 version, str spec_name, u32 revision, u32 n_variables,
    n_variables x (str name, u8 rank, rank x u32 dim, u8 dtype, u32 n_bytes, data),
    u32 n_aliases, n_aliases x (str alias, str target)

where ``str`` is a u16 length followed by that many bytes ending in NUL. The reader
seeks past the data and reads only the variables it maps, one at a time, so peak
memory stays near one float32 copy of the model. A directory may hold
``model.bin.part1``, ``model.bin.part2``, ... instead of ``model.bin``; the parts are
read as one concatenated file.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ane_core.errors import WeightsError
from whisper.model import ModelDimensions

SUPPORTED_VERSION = 6

_BF16 = 5
_DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    _BF16: np.dtype("<u2"),  # bfloat16 bits; widened to float32 by hand
}
_INTEGER = {1, 2, 3}

# Sanity limits: values beyond these mean the file is not a CTranslate2 model at all.
_MAX_STRING, _MAX_VARIABLES, _MAX_RANK = 4096, 1_000_000, 8

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


class _Truncated(Exception):
    """A read went past the end of the (concatenated) file."""


class _ConcatFile:
    """Random-access reads over one file or several part files read back to back."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self._files = [open(p, "rb") for p in paths]  # noqa: SIM115 - closed in close()
        self._starts: list[int] = []
        self.size = 0
        for p in paths:
            self._starts.append(self.size)
            self.size += p.stat().st_size

    def read(self, offset: int, n: int) -> bytearray:
        if offset + n > self.size:
            raise _Truncated
        out = bytearray(n)
        view, got = memoryview(out), 0
        for f, start, end in zip(
            self._files, self._starts, [*self._starts[1:], self.size], strict=True
        ):
            if got == n or offset + got >= end:
                continue
            f.seek(offset + got - start)
            want = min(n - got, end - offset - got)
            if f.readinto(view[got : got + want]) != want:  # a file shrank while we read it
                raise _Truncated
            got += want
        view.release()
        return out

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for f in self._files:
            f.seek(0)
            while chunk := f.read(8 << 20):
                digest.update(chunk)
        return digest.hexdigest()

    def close(self) -> None:
        for f in self._files:
            f.close()


@dataclass(frozen=True)
class Variable:
    """Where one variable's data lies in the file."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    offset: int
    n_bytes: int


def model_files(directory: Path) -> list[Path]:
    """``model.bin``, or ``model.bin.part1..N`` in numeric order; anything else is an error."""
    if (directory / "model.bin").is_file():
        return [directory / "model.bin"]
    parts: dict[int, Path] = {}
    for p in directory.iterdir():
        m = re.fullmatch(r"model\.bin\.part(\d+)", p.name)
        if m and p.is_file():
            parts[int(m.group(1))] = p
    if not parts:
        raise WeightsError(
            f"{directory} has no model.bin (nor model.bin.part1, ...).",
            "Pass a CTranslate2 Whisper model directory, an openai-whisper .pt file, or --weights random.",
        )
    missing = sorted(set(range(1, max(parts) + 1)) - set(parts))
    if missing:
        raise WeightsError(
            f"{directory} lacks model.bin.part{missing[0]} of {max(parts)} parts.",
            "Put every part in the directory.",
        )
    return [parts[i] for i in sorted(parts)]


class Ct2Checkpoint:
    """An open CTranslate2 Whisper directory: dimensions from the header, tensors on demand.

    Use as a context manager; :meth:`state_dict` reads the mapped variables.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        files = model_files(directory)
        self.path = files[0] if len(files) == 1 else directory
        self.alignment_heads = _read_config(directory)
        self._file = _ConcatFile(files)
        try:
            self.spec, self.revision, self.variables, self.aliases = _parse_index(
                self._file, self.path
            )
            self.dims = self._dims()
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> Ct2Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def sha256(self) -> str:
        """SHA-256 of ``model.bin`` as read (of the parts' concatenation for a split file)."""
        return self._file.sha256()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """All weights as float32 tensors under openai-whisper names (int8 dequantized)."""
        mapping = name_map(self.dims.n_audio_layer, self.dims.n_text_layer)
        return {ours: torch.from_numpy(self._rows(*where)) for ours, where in mapping.items()}

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
        except _Truncated:
            raise _truncated(self.path) from None
        return np.frombuffer(data, dtype=_DTYPES[var.dtype]).reshape(var.shape)

    def _scalar(self, name: str, default: int) -> int:
        if name not in self.variables:
            return default
        return int(self._raw(self.variables[name]).reshape(-1)[0])

    def _rows(self, name: str, part: int, parts: int) -> np.ndarray:
        """Row block ``part`` of ``parts`` of a variable, as a fresh float32 array."""
        var = self._variable(name)
        raw = self._raw(var)
        rows = slice(None)  # also fits 0-d variables (a global int16 scale)
        if parts > 1:
            n = raw.shape[0] // parts
            rows = slice(part * n, (part + 1) * n)
            raw = raw[rows]
        if var.dtype == _BF16:
            return (raw.astype(np.uint32) << 16).view(np.float32)
        values = raw.astype(np.float32)
        if var.dtype in _INTEGER:
            # CTranslate2 stores round(w * scale) with a per-row (int8) or global (int16) scale.
            scale_name = f"{var.name}_scale"
            if scale_name not in self.variables:
                raise WeightsError(
                    f"{self.path}: {var.name} is an integer tensor without {scale_name} (unsupported quantization).",
                    "Convert the model with --quantization float16 or float32.",
                )
            scale = self._rows(scale_name, 0, 1)
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


def _truncated(path: Path) -> WeightsError:
    return WeightsError(
        f"{path} is truncated (it ends before its last variable).", "Copy or download it again."
    )


def _read_config(directory: Path) -> tuple[tuple[int, int], ...] | None:
    """The ``alignment_heads`` (layer, head) pairs from config.json, which must exist."""
    config = directory / "config.json"
    if not config.is_file():
        raise WeightsError(
            f"{directory} has no config.json, so it is not a complete CTranslate2 model directory.",
            "Copy the whole directory the converter wrote.",
        )
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        heads = data.get("alignment_heads")
        return None if heads is None else tuple((int(layer), int(head)) for layer, head in heads)
    except (ValueError, TypeError, AttributeError) as e:
        raise WeightsError(
            f"{config} is not valid CTranslate2 config JSON ({e}).", "Restore it."
        ) from None


class _Cursor:
    """Sequential little-endian reads of the header fields."""

    def __init__(self, file: _ConcatFile) -> None:
        self.file, self.offset = file, 0

    def take(self, n: int) -> bytes:
        data = self.file.read(self.offset, n)
        self.offset += n
        return data

    def skip(self, n: int) -> None:
        if self.offset + n > self.file.size:
            raise _Truncated
        self.offset += n

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def string(self) -> str:
        n = self.u16()
        raw = self.take(n) if 0 < n <= _MAX_STRING else b""
        if not raw.endswith(b"\0"):
            raise ValueError("bad string")
        return raw[:-1].decode("utf-8")


def _parse_index(
    file: _ConcatFile, path: Path
) -> tuple[str, int, dict[str, Variable], dict[str, str]]:
    """Header walk: spec name, revision, variable locations and aliases; no tensor data read."""
    cursor = _Cursor(file)
    not_ct2 = WeightsError(
        f"{path} does not look like a CTranslate2 model.bin.",
        "Pass a directory written by ct2-transformers-converter, or an openai-whisper .pt file.",
    )
    try:
        version = cursor.u32()
        if version != SUPPORTED_VERSION:
            if 1 <= version <= 64:
                raise WeightsError(
                    f"{path} is CTranslate2 model format version {version}, which is unsupported "
                    f"(this reader knows version {SUPPORTED_VERSION}).",
                    "Re-convert the model with a current ct2-transformers-converter.",
                )
            raise not_ct2
        spec = cursor.string()
        revision = cursor.u32()
        count = cursor.u32()
        if count > _MAX_VARIABLES:
            raise not_ct2
        variables: dict[str, Variable] = {}
        for _ in range(count):
            name = cursor.string()
            rank = cursor.u8()
            if rank > _MAX_RANK:
                raise not_ct2
            shape = tuple(cursor.u32() for _ in range(rank))
            dtype = cursor.u8()
            n_bytes = cursor.u32()
            if dtype not in _DTYPES:
                raise WeightsError(
                    f"{path}: variable {name} has unknown CTranslate2 data type {dtype}.",
                    "Convert the model with --quantization float16 or float32.",
                )
            if n_bytes != int(np.prod(shape, dtype=np.int64)) * _DTYPES[dtype].itemsize:
                raise not_ct2
            variables[name] = Variable(name, dtype, shape, cursor.offset, n_bytes)
            cursor.skip(n_bytes)
        aliases = {}
        for _ in range(cursor.u32()):
            alias = cursor.string()
            aliases[alias] = cursor.string()
    except _Truncated:
        raise _truncated(path) from None
    except (ValueError, UnicodeDecodeError):
        raise not_ct2 from None
    if spec != "WhisperSpec":
        raise WeightsError(
            f"{path} is a CTranslate2 {spec} model, not Whisper.", "Pass a Whisper model."
        )
    return spec, revision, variables, aliases
