"""Property-based fuzzing of the weight readers (hypothesis): a CTranslate2 directory (one
``model.bin`` or parts), a Hugging Face directory (one safetensors file, or shards and their
index) and an openai-whisper ``.pt``, each cut short at a random length, with random bytes of
its headers flipped, or with a file swapped for a Git LFS pointer. ``load_weights`` either
raises one clean AneError naming the checkpoint, or loads weights a Whisper model can use
(the intact ones, for a cut or a pointer); never another exception, never a hang, never an
allocation beyond what the files justify (see :mod:`ane_core.fuzzing`)."""

from __future__ import annotations

import dataclasses
import struct
import zipfile
from pathlib import Path

import pytest
import torch
from ane_core.fuzzing import check_damaged_read, damaged_copy, damages
from ane_core.package_size import bytes_on_disk
from hypothesis import given
from hypothesis import strategies as st
from weight_writers import SMALL, ct2_variables, write_ct2, write_hf_dir, write_sharded_hf_dir

from whisper_ane.weights import LoadedWeights, load_weights
from whisper_ane.weights.random_init import random_state_dict

Ranges = list[tuple[int, int]]


def _whole(path: Path) -> Ranges:
    return [(0, path.stat().st_size)]


def _ct2_header_ranges(data: bytes) -> Ranges:
    """Every byte of a CTranslate2 model.bin but the tensor data: the parts a reader trusts."""
    data_ranges = []
    offset = 4
    (n,) = struct.unpack_from("<H", data, offset)
    offset += 2 + n + 4
    (count,) = struct.unpack_from("<I", data, offset)
    offset += 4
    for _ in range(count):
        (n,) = struct.unpack_from("<H", data, offset)
        offset += 2 + n
        rank = data[offset]
        offset += 1 + 4 * rank + 1
        (n_bytes,) = struct.unpack_from("<I", data, offset)
        offset += 4
        data_ranges.append((offset, offset + n_bytes))
        offset += n_bytes
    ranges, start = [], 0
    for begin, end in data_ranges:
        if begin > start:
            ranges.append((start, begin))
        start = end
    return [*ranges, (start, len(data))]


def _split(ranges: Ranges, cut: int) -> tuple[Ranges, Ranges]:
    """``ranges`` of a file split at ``cut`` into two parts, in each part's own offsets."""
    first = [(a, min(b, cut)) for a, b in ranges if a < cut]
    second = [(max(a, cut) - cut, b - cut) for a, b in ranges if b > cut]
    return first, second


def _pt_header_ranges(path: Path) -> Ranges:
    """Every byte of a PyTorch zip but the tensor storages (its ``data/N`` records): local
    headers, the pickle and small records, the central directory and its end record."""
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        entries = archive.infolist()
    ranges, tail = [], 0
    for entry in entries:
        name_length, extra_length = struct.unpack_from("<HH", raw, entry.header_offset + 26)
        data_start = entry.header_offset + 30 + name_length + extra_length
        storage = "/data/" in entry.filename and entry.filename.rsplit("/", 1)[-1].isdigit()
        end = data_start if storage else data_start + entry.compress_size
        ranges.append((entry.header_offset, end))
        tail = max(tail, data_start + entry.compress_size)
    return [*ranges, (tail, len(raw))]


def _subject(kind: str, root: Path, weights: LoadedWeights):
    """(folder, checkpoint argument, {file: size}, {file: header ranges}) for one kind."""
    if kind in ("ct2", "ct2-parts"):
        folder = write_ct2(root / kind, ct2_variables(weights.state_dict, SMALL))
        data = (folder / "model.bin").read_bytes()
        headers = {"model.bin": _ct2_header_ranges(data)}
        if kind == "ct2-parts":
            cut = len(data) // 2  # mid-tensor, as the registry package splits base
            (folder / "model.bin").unlink()
            (folder / "model.bin.part1").write_bytes(data[:cut])
            (folder / "model.bin.part2").write_bytes(data[cut:])
            first, second = _split(headers.pop("model.bin"), cut)
            headers |= {"model.bin.part1": first, "model.bin.part2": second}
        argument = folder
    elif kind in ("hf", "hf-shards"):
        write = write_hf_dir if kind == "hf" else write_sharded_hf_dir
        folder = write(root / kind, weights)
        headers = {}
        for path in folder.iterdir():
            if path.suffix == ".safetensors":
                (n,) = struct.unpack_from("<Q", path.read_bytes())
                headers[path.name] = [(0, 8 + n)]
            else:  # config.json, model.safetensors.index.json
                headers[path.name] = _whole(path)
        argument = folder
    else:  # an openai-whisper .pt
        folder = root / kind
        folder.mkdir()
        argument = folder / "small.pt"
        state = {"dims": dataclasses.asdict(SMALL), "model_state_dict": dict(weights.state_dict)}
        torch.save(state, argument)
        headers = {argument.name: _pt_header_ranges(argument)}
    sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
    return folder, argument, sizes, headers


KINDS = ["ct2", "ct2-parts", "hf", "hf-shards", "pt"]


@pytest.fixture(scope="module")
def small_weights() -> LoadedWeights:
    return LoadedWeights(SMALL, random_state_dict(SMALL, seed=1), "test", None, None)


@pytest.fixture(scope="module", params=KINDS)
def subject(request, small_weights, tmp_path_factory):
    folder, argument, sizes, headers = _subject(
        request.param, tmp_path_factory.mktemp("weights"), small_weights
    )
    intact = load_weights(None, str(argument))
    for name, tensor in small_weights.state_dict.items():
        assert torch.equal(intact.state_dict[name], tensor), name  # the writers are right
    return folder, argument, sizes, headers, intact


def _usable(dims) -> bool:
    """Dimensions a Whisper model can be built with (no zero, heads divide widths)."""
    values = dataclasses.astuple(dims)
    return (
        all(v > 0 for v in values)
        and dims.n_audio_state % dims.n_audio_head == 0
        and dims.n_text_state % dims.n_text_head == 0
    )


@given(data=st.data())
def test_damaged_checkpoint_load(subject, data):
    folder, argument, sizes, headers, intact = subject
    damage = data.draw(damages(sizes, headers))
    with damaged_copy(folder, damage) as copy:
        target = copy / Path(argument).relative_to(folder) if argument != folder else copy

        def accept(weights: LoadedWeights) -> None:
            assert _usable(weights.dims), f"{damage} loaded unusable dimensions {weights.dims}"
            if damage.kind != "flip":  # a cut may pass only where it removed nothing read
                assert weights.dims == intact.dims, damage
                for name, tensor in intact.state_dict.items():
                    assert torch.equal(weights.state_dict[name], tensor), f"{damage}: {name}"

        check_damaged_read(
            lambda: load_weights(None, str(target)),
            damage,
            copy,
            file_bytes=bytes_on_disk(folder),
            accept=accept,
        )
