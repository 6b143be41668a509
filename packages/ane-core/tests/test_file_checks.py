"""ane_core.file_checks: Git LFS pointers, safetensors headers, PyTorch zips and .npy files,
each damaged the ways downloads are, plus properties over random damage (hypothesis)."""

from __future__ import annotations

import json
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ane_core.errors import AneError, PackageError, WeightsError
from ane_core.file_checks import (
    check_npy,
    check_safetensors,
    check_torch_zip,
    read_lfs_pointer,
    refuse_lfs_pointer,
)
from ane_core.file_checks.lfs import parse_lfs_pointer
from ane_core.fuzzing import check_damaged_read, damages, lfs_pointer_text

OID = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"


# -- Git LFS pointers --------------------------------------------------------------------


def test_lfs_pointer_is_recognised_with_its_size_and_oid(tmp_path):
    path = tmp_path / "weight.bin"
    path.write_bytes(lfs_pointer_text(OID, 16_421_120))
    pointer = read_lfs_pointer(path)
    assert pointer is not None and pointer.size == 16_421_120 and pointer.oid == f"sha256:{OID}"
    with pytest.raises(PackageError) as caught:
        refuse_lfs_pointer(path, PackageError)
    message = str(caught.value)
    assert message.startswith(f"{path} is a Git LFS pointer, not the file itself")
    assert "16,421,120 bytes" in message and "git lfs pull" in message and "\n" not in message


@pytest.mark.parametrize(
    "text",
    [
        b"version https://hawser.github.com/spec/v1\noid sha256:" + OID.encode() + b"\nsize 5\n",
        b"version https://git-lfs.github.com/spec/v1\nsize 5\n",  # no oid: still a pointer
        b"version https://git-lfs.github.com/spec/v1\r\noid sha256:ab\r\nsize 5\r\n",
    ],
)
def test_pointer_variants_git_lfs_reads_are_pointers(text):
    assert parse_lfs_pointer(text) is not None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"version 2\n",
        b"\x00\x01version https://git-lfs.github.com/spec/v1\n",
        lfs_pointer_text(OID, 5) + b" " * 1024,  # git-lfs never reads 1024+ bytes as a pointer
        b"\xff\xfe" * 10,
    ],
)
def test_other_files_are_not_pointers(data):
    assert parse_lfs_pointer(data) is None


def test_missing_file_is_no_pointer(tmp_path):
    assert read_lfs_pointer(tmp_path / "missing") is None


@given(st.binary(max_size=2048))
def test_any_bytes_parse_to_a_pointer_or_none(data):
    pointer = parse_lfs_pointer(data)
    assert pointer is None or data.startswith(b"version ")


# -- safetensors ---------------------------------------------------------------------------


def _safetensors(path: Path, tensors: dict[str, np.ndarray]) -> Path:
    """Write a safetensors file by its spec (huggingface/safetensors README, "Format")."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        data = array.tobytes()
        dtype = {np.float32: "F32", np.float16: "F16", np.int64: "I64"}[array.dtype.type]
        header[name] = {
            "dtype": dtype,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))
    return path


@pytest.fixture
def small_safetensors(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    return _safetensors(
        tmp_path / "model.safetensors",
        {
            "a.weight": rng.standard_normal((8, 4)).astype(np.float32),
            "b.bias": rng.standard_normal(3).astype(np.float16),
            "steps": np.arange(5, dtype=np.int64),
        },
    )


def test_intact_safetensors_header_is_read(small_safetensors):
    entries = check_safetensors(small_safetensors)
    assert entries["a.weight"].shape == (8, 4) and entries["a.weight"].dtype == "F32"
    assert entries["steps"].end - entries["steps"].begin == 40


def _rewrite_header(path: Path, edit) -> None:
    data = path.read_bytes()
    (n,) = struct.unpack_from("<Q", data)
    header = json.loads(data[8 : 8 + n])
    edit(header)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("cut", "is truncated: its header describes 398 bytes but the file has 368"),
        ("short", "is truncated (5 bytes; a safetensors file starts"),
        ("huge header", "is not a valid safetensors file (its header claims 18,446"),
        ("header past end", "is truncated: its header alone claims 1,000,000 bytes"),
        ("2^31 elements", "tensor 'a.weight' claims shape (2147483648,) of F32 in 128 bytes"),
        ("unknown dtype", "tensor 'a.weight' has unknown dtype 'F13'"),
        ("negative dim", "tensor 'a.weight' has a malformed shape"),
        ("not json", "its header is not JSON"),
        ("lfs", "is a Git LFS pointer"),
    ],
)
def test_damaged_safetensors_are_one_line(small_safetensors, damage, message):
    path = small_safetensors
    data = path.read_bytes()
    if damage == "cut":
        path.write_bytes(data[:-30])
    elif damage == "short":
        path.write_bytes(data[:5])
    elif damage == "huge header":
        path.write_bytes(struct.pack("<Q", 2**64 - 1) + data[8:])
    elif damage == "header past end":
        path.write_bytes(struct.pack("<Q", 1_000_000) + data[8:])
    elif damage == "2^31 elements":
        _rewrite_header(path, lambda h: h["a.weight"].update(shape=[2**31]))
    elif damage == "unknown dtype":
        _rewrite_header(path, lambda h: h["a.weight"].update(dtype="F13"))
    elif damage == "negative dim":
        _rewrite_header(path, lambda h: h["a.weight"].update(shape=[-8, -4]))
    elif damage == "not json":
        path.write_bytes(data[:8] + b"\xff" * 16 + data[24:])
    elif damage == "lfs":
        path.write_bytes(lfs_pointer_text(OID, len(data)))
    with pytest.raises(WeightsError) as caught:
        check_safetensors(path)
    text = str(caught.value)
    assert message in text and str(path) in text and "\n" not in text


@pytest.fixture(scope="module")
def safetensors_bytes(tmp_path_factory) -> bytes:
    rng = np.random.default_rng(0)
    path = _safetensors(
        tmp_path_factory.mktemp("st") / "m.safetensors",
        {
            "a.weight": rng.standard_normal((8, 4)).astype(np.float32),
            "b.bias": rng.standard_normal(3).astype(np.float16),
        },
    )
    return path.read_bytes()


@given(data=st.data())
def test_safetensors_check_property(safetensors_bytes, data):
    """Any damage: a clean WeightsError, or (a flip) a header whose every tensor lies inside
    the file."""
    (header_size,) = struct.unpack_from("<Q", safetensors_bytes)
    name = "model.safetensors"
    damage = data.draw(damages({name: len(safetensors_bytes)}, {name: [(0, 8 + header_size)]}))
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / name).write_bytes(safetensors_bytes)
        damage.apply(root)
        raw = (root / name).read_bytes()

        def accept(entries):
            assert damage.kind == "flip", f"{damage} was not noticed"
            (n,) = struct.unpack_from("<Q", raw)
            assert all(8 + n + entry.end <= len(raw) for entry in entries.values())

        check_damaged_read(
            lambda: check_safetensors(root / name),
            damage,
            root,
            file_bytes=len(safetensors_bytes),
            accept=accept,
        )


# -- PyTorch zip checkpoints ----------------------------------------------------------------


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    path = tmp_path / "model.pt"
    torch.save({"w": torch.arange(256, dtype=torch.float32)}, path)
    return path


def test_intact_checkpoint_passes(checkpoint):
    check_torch_zip(checkpoint)


def _patch_central_directory(path: Path, member_suffix: str, field: str, value: int) -> None:
    """Change one size field of a central directory entry (APPNOTE.TXT 4.3.12)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(member_suffix))
    name = info.filename.encode()
    start = 0
    while True:
        start = data.find(b"PK\x01\x02", start)
        (length,) = struct.unpack_from("<H", data, start + 28)
        if data[start + 46 : start + 46 + length] == name:
            break
        start += 4
    offset = {"compressed": 20, "uncompressed": 24}[field]
    struct.pack_into("<I", data, start + offset, value)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("empty", "is empty"),
        ("cut", "is truncated or damaged"),
        ("legacy", "is not a PyTorch checkpoint (a zip archive written by torch.save"),
        ("lfs", "is a Git LFS pointer"),
        ("claims 4 GiB", "claims 4,294,967,295 bytes, more than the file"),
        ("data past end", "is truncated (model/data/0 ends past the file)"),
    ],
)
def test_damaged_checkpoints_are_one_line(checkpoint, damage, message):
    data = checkpoint.read_bytes()
    if damage == "empty":
        checkpoint.write_bytes(b"")
    elif damage == "cut":
        checkpoint.write_bytes(data[: len(data) // 2])
    elif damage == "legacy":
        torch.save({"w": torch.zeros(3)}, checkpoint, _use_new_zipfile_serialization=False)
    elif damage == "lfs":
        checkpoint.write_bytes(lfs_pointer_text(OID, len(data)))
    elif damage == "claims 4 GiB":
        _patch_central_directory(checkpoint, "data/0", "uncompressed", 2**32 - 1)
    elif damage == "data past end":
        # within the file's length, but starting where it starts the data cannot fit
        _patch_central_directory(checkpoint, "data/0", "compressed", len(data) - 8)
        _patch_central_directory(checkpoint, "data/0", "uncompressed", len(data) - 8)
    with pytest.raises(WeightsError) as caught:
        check_torch_zip(checkpoint)
    text = str(caught.value)
    assert message in text and str(checkpoint) in text and "\n" not in text


# -- .npy ------------------------------------------------------------------------------------


def test_npy_check_reads_shape_and_refuses_damage(tmp_path):
    path = tmp_path / "table.npy"
    np.save(path, np.arange(12, dtype=np.float16).reshape(3, 4))
    assert check_npy(path, PackageError) == ((3, 4), np.dtype(np.float16))
    data = path.read_bytes()
    path.write_bytes(data[:-2])
    with pytest.raises(PackageError, match=r"is truncated: its header describes 24 bytes of data"):
        check_npy(path, PackageError)
    path.write_bytes(data.replace(b"(3, 4)", b"(9, 9)"))  # same header length, more data
    with pytest.raises(PackageError, match="describes 162 bytes of data but the file holds 24"):
        check_npy(path, PackageError)
    path.write_bytes(b"not an array")
    with pytest.raises(PackageError, match=r"is not a readable \.npy array"):
        check_npy(path, PackageError)
    path.write_bytes(lfs_pointer_text(OID, 200))
    with pytest.raises(AneError, match="Git LFS pointer"):
        check_npy(path, PackageError)
