"""The binary layout of a CTranslate2 ``model.bin``: where each variable lies, nothing more.

Why its own module: the layout is a file format, checked against the bytes that are really
there; what the variables mean for Whisper is :mod:`whisper_ane.weights.ctranslate2`'s job.
The layout (version 6, little-endian; CTranslate2's ``python/ctranslate2/specs/model_spec.py``
``ModelSpec._serialize`` writes it, ``src/models/model.cc`` reads it)::

    u32 version, str spec_name, u32 revision, u32 n_variables,
    n_variables x (str name, u8 rank, rank x u32 dim, u8 dtype, u32 n_bytes, data),
    u32 n_aliases, n_aliases x (str alias, str target)

where ``str`` is a u16 length followed by that many bytes ending in NUL. The index walk
(:func:`parse_index`) seeks past the data, so nothing a header claims is allocated: every
size is first measured against the file (a claim of 2^31 elements in a small file is
"truncated", not 8 GiB of memory). A directory may hold ``model.bin.part1``,
``model.bin.part2``, ... instead of ``model.bin``; the parts are read as one file.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ane_core.errors import WeightsError
from ane_core.file_checks import refuse_lfs_pointer

SUPPORTED_VERSION = 6

BF16 = 5
DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    BF16: np.dtype("<u2"),  # bfloat16 bits; widened to float32 by hand
}
INTEGER = {1, 2, 3}

# Sanity limits: values beyond these mean the file is not a CTranslate2 model at all.
_MAX_STRING, _MAX_VARIABLES, _MAX_RANK = 4096, 1_000_000, 8


class Truncated(Exception):
    """A read went past the end of the (concatenated) file."""


class ConcatFile:
    """Random-access reads over one file or several part files read back to back."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self._files = []
        try:
            for p in paths:
                self._files.append(open(p, "rb"))  # noqa: SIM115 - closed in close()
        except OSError:
            self.close()  # the parts opened before the one that failed
            raise
        self._starts: list[int] = []
        self.size = 0
        for p in paths:
            self._starts.append(self.size)
            self.size += p.stat().st_size

    def read(self, offset: int, n: int) -> bytearray:
        """``n`` bytes from ``offset``; :class:`Truncated` (before allocating) if the file
        holds fewer."""
        if offset + n > self.size:
            raise Truncated
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
                raise Truncated
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


@dataclass(frozen=True)
class Index:
    """What the header says: spec name, revision, variable locations, aliases."""

    spec: str
    revision: int
    variables: dict[str, Variable]
    aliases: dict[str, str]


def model_files(directory: Path) -> list[Path]:
    """``model.bin``, or ``model.bin.part1..N`` in numeric order; anything else, or a Git LFS
    pointer in place of any of them, is an error."""
    if (directory / "model.bin").is_file():
        files = [directory / "model.bin"]
    else:
        parts: dict[int, Path] = {}
        for p in directory.iterdir():
            m = re.fullmatch(r"model\.bin\.part(\d+)", p.name)
            if m and p.is_file():
                parts[int(m.group(1))] = p
        if not parts:
            raise WeightsError(
                f"{directory} has no model.bin (nor model.bin.part1, ...).",
                "Pass a CTranslate2 Whisper model directory, an openai-whisper .pt file, or "
                "--weights random.",
            )
        missing = sorted(set(range(1, max(parts) + 1)) - set(parts))
        if missing:
            raise WeightsError(
                f"{directory} lacks model.bin.part{missing[0]} of {max(parts)} parts.",
                "Put every part in the directory.",
            )
        files = [parts[i] for i in sorted(parts)]
    for path in files:
        refuse_lfs_pointer(path)
    return files


def truncated_error(path: Path) -> WeightsError:
    return WeightsError(
        f"{path} is truncated (it ends before its last variable).", "Copy or download it again."
    )


class _Cursor:
    """Sequential little-endian reads of the header fields."""

    def __init__(self, file: ConcatFile) -> None:
        self.file, self.offset = file, 0

    def take(self, n: int) -> bytes:
        data = self.file.read(self.offset, n)
        self.offset += n
        return data

    def skip(self, n: int) -> None:
        if self.offset + n > self.file.size:
            raise Truncated
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


def parse_index(file: ConcatFile, path: Path) -> Index:
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
            if dtype not in DTYPES:
                raise WeightsError(
                    f"{path}: variable {name} has unknown CTranslate2 data type {dtype}.",
                    "Convert the model with --quantization float16 or float32.",
                )
            # Python integers: a product of eight u32 dimensions must not wrap around
            if n_bytes != math.prod(shape) * DTYPES[dtype].itemsize:
                raise not_ct2
            if cursor.offset + n_bytes > file.size:  # measured before anything is read
                raise WeightsError(
                    f"{path} is truncated: variable {name} needs bytes {cursor.offset:,}-"
                    f"{cursor.offset + n_bytes:,} but the file has {file.size:,}.",
                    "Copy or download it again.",
                )
            variables[name] = Variable(name, dtype, shape, cursor.offset, n_bytes)
            cursor.skip(n_bytes)
        aliases = {}
        for _ in range(cursor.u32()):
            alias = cursor.string()
            aliases[alias] = cursor.string()
    except Truncated:
        raise truncated_error(path) from None
    except (ValueError, UnicodeDecodeError):
        raise not_ct2 from None
    if spec != "WhisperSpec":
        raise WeightsError(
            f"{path} is a CTranslate2 {spec} model, not Whisper.", "Pass a Whisper model."
        )
    return Index(spec, revision, variables, aliases)
