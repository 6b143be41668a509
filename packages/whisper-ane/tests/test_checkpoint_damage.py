"""Damaged and hostile checkpoints: every format (openai ``.pt``, CTranslate2 ``model.bin`` or
its parts, Hugging Face safetensors or its shards) cut short or replaced by a Git LFS pointer
is one WeightsError line naming the file; headers that claim more than the file holds are
refused before anything is allocated (peak memory measured in a child process)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ane_core.errors import WeightsError
from ane_core.fuzzing import lfs_pointer_text
from weight_writers import SMALL, ct2_variables, write_ct2, write_hf_dir
from weight_writers import write_sharded_hf_dir as write_shards

from whisper_ane.weights import LoadedWeights, load_weights
from whisper_ane.weights.random_init import random_state_dict

PEAK_RSS_LIMIT = 1 << 30
"""A refused checkpoint may not take the loading process above 1 GiB (torch and whisper
imported included)."""


@pytest.fixture(scope="module")
def small() -> LoadedWeights:
    return LoadedWeights(SMALL, random_state_dict(SMALL, seed=1), "test", None, None)


def _checkpoint(fmt: str, root: Path, weights: LoadedWeights) -> tuple[Path, Path]:
    """(the argument to load_weights, the file to damage) of a small checkpoint."""
    if fmt == "pt":
        path = root / "small.pt"
        torch.save(
            {"dims": dataclasses.asdict(SMALL), "model_state_dict": dict(weights.state_dict)}, path
        )
        return path, path
    if fmt.startswith("ct2"):
        folder = write_ct2(root / fmt, ct2_variables(weights.state_dict, SMALL))
        if fmt == "ct2-parts":
            data = (folder / "model.bin").read_bytes()
            (folder / "model.bin").unlink()
            (folder / "model.bin.part1").write_bytes(data[: len(data) // 2])
            (folder / "model.bin.part2").write_bytes(data[len(data) // 2 :])
            return folder, folder / "model.bin.part2"
        return folder, folder / "model.bin"
    if fmt == "hf":
        folder = write_hf_dir(root / fmt, weights)
        return folder, folder / "model.safetensors"
    folder = write_shards(root / fmt, weights)
    return folder, folder / "model-00002-of-00002.safetensors"


# format: (what the line says when the file is cut to half, when it is an LFS pointer)
MATRIX = {
    "pt": "is truncated or damaged (its zip directory cannot be read)",
    "ct2": "is truncated: variable ",  # the first one that ends past the cut
    "ct2-parts": "is truncated: variable ",
    "hf": "is truncated: its header describes",
    "hf-shards": "is truncated: its header describes",
}


@pytest.mark.parametrize("damage", ["cut to half", "LFS pointer"])
@pytest.mark.parametrize("fmt", list(MATRIX))
def test_damaged_checkpoint_is_one_line(fmt, damage, small, tmp_path):
    argument, target = _checkpoint(fmt, tmp_path, small)
    data = target.read_bytes()
    if damage == "cut to half":
        target.write_bytes(data[: len(data) // 2])
        expected = MATRIX[fmt]
    else:
        target.write_bytes(lfs_pointer_text("ab" * 32, len(data)))
        expected = (
            f"is a Git LFS pointer, not the file itself (the real file is {len(data):,} bytes"
        )
    with pytest.raises(WeightsError) as caught:
        load_weights(None, str(argument))
    message = str(caught.value)
    assert expected in message and "\n" not in message, message
    named = target if damage == "LFS pointer" or fmt != "ct2-parts" else argument
    assert str(named) in message, message


@pytest.mark.parametrize("name", ["config.json", "model.safetensors.index.json"])
def test_lfs_pointers_for_the_small_files_are_named_too(name, small, tmp_path):
    """A clone without LFS may leave any tracked file a pointer, JSON included."""
    folder = write_shards(tmp_path / "hf", small)
    (folder / name).write_bytes(lfs_pointer_text("cd" * 32, 1234))
    with pytest.raises(WeightsError, match=f"{name} is a Git LFS pointer"):
        load_weights(None, str(folder))


def test_shard_names_stay_inside_the_directory(small, tmp_path):
    folder = write_shards(tmp_path / "hf", small)
    index = folder / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    data["weight_map"] = dict.fromkeys(data["weight_map"], "../../etc/passwd")
    index.write_text(json.dumps(data))
    with pytest.raises(WeightsError, match="names shard '../../etc/passwd', which is not a file"):
        load_weights(None, str(folder))


# -- hostile headers: claims the file cannot back ----------------------------------------


def _ct2_claiming_huge_dims(root: Path, weights: LoadedWeights) -> Path:
    """A CTranslate2 header whose token embedding claims 2^31 x 1 int8 elements (2 GiB, 8 GiB
    as float32) in a file of a few kilobytes: n_bytes agrees with the shape, as it would in a
    crafted file."""
    variables = ct2_variables(weights.state_dict, SMALL)
    folder = write_ct2(root / "ct2-huge", variables)
    data = bytearray((folder / "model.bin").read_bytes())
    name = b"decoder/embeddings/weight\0"
    at = data.index(struct.pack("<H", len(name)) + name) + 2 + len(name)
    old_rank = data[at]
    old_dims = struct.unpack_from(f"<{old_rank}I", data, at + 1)
    old_n_bytes_at = at + 1 + 4 * old_rank + 1
    (old_n_bytes,) = struct.unpack_from("<I", data, old_n_bytes_at)
    header = bytes([2]) + struct.pack("<2I", 2**31, 1) + bytes([1]) + struct.pack("<I", 2**31)
    data[at : old_n_bytes_at + 4] = header  # same length: rank 2 -> rank 2
    assert old_rank == 2 and old_dims == (SMALL.n_vocab, SMALL.n_text_state) and old_n_bytes
    (folder / "model.bin").write_bytes(bytes(data))
    return folder


def _safetensors_claiming_huge_shape(root: Path, weights: LoadedWeights) -> Path:
    """A safetensors header whose first tensor claims 2^31 float32 elements (8 GiB), with
    offsets that agree, in a file of a few kilobytes."""
    folder = write_hf_dir(root / "hf-huge", weights)
    path = folder / "model.safetensors"
    data = path.read_bytes()
    (n,) = struct.unpack_from("<Q", data)
    header = json.loads(data[8 : 8 + n])
    first = next(k for k in header if k != "__metadata__")
    header[first] = {"dtype": "F32", "shape": [2**31], "data_offsets": [0, 2**33]}
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])
    return folder


def _pt_claiming_huge_record(root: Path, weights: LoadedWeights) -> Path:
    """A ``.pt`` whose zip directory says a storage record holds 4 GiB."""
    path = root / "huge.pt"
    torch.save(
        {"dims": dataclasses.asdict(SMALL), "model_state_dict": dict(weights.state_dict)}, path
    )
    data = bytearray(path.read_bytes())
    start = data.find(b"PK\x01\x02")
    while start >= 0:  # every central directory entry (APPNOTE.TXT 4.3.12): sizes at 20, 24
        struct.pack_into("<II", data, start + 20, 2**32 - 1, 2**32 - 1)
        start = data.find(b"PK\x01\x02", start + 4)
    path.write_bytes(bytes(data))
    return path


HUGE_CONTEXT = 10**6


def _huge_context_weights() -> LoadedWeights:
    """A complete, consistent tiny model (width 4, two heads) with 10^6 text positions: its
    positional embedding (16 MB) agrees with its dimensions, but a model built from them
    needs a 10^6 x 10^6 causal mask (4 TB)."""
    narrow = dataclasses.replace(
        SMALL, n_audio_state=4, n_audio_head=2, n_text_state=4, n_text_head=2
    )
    state = random_state_dict(narrow, seed=2)
    state["decoder.positional_embedding"] = torch.zeros(HUGE_CONTEXT, 4)
    dims = dataclasses.replace(narrow, n_text_ctx=HUGE_CONTEXT)
    return LoadedWeights(dims, state, "test", None, None)


def _hf_claiming_huge_context(root: Path, weights: LoadedWeights) -> Path:
    """A transformers directory whose config.json declares 10^6 text positions."""
    return write_hf_dir(root / "hf-context", _huge_context_weights())


def _pt_claiming_huge_context(root: Path, weights: LoadedWeights) -> Path:
    """An openai-whisper checkpoint whose ``dims`` declare 10^6 text positions."""
    huge = _huge_context_weights()
    path = root / "context.pt"
    torch.save(
        {"dims": dataclasses.asdict(huge.dims), "model_state_dict": dict(huge.state_dict)}, path
    )
    return path


HOSTILE = {
    # case: (builder, what the one line says)
    "CTranslate2 header claiming 2^31 elements": (
        _ct2_claiming_huge_dims,
        "is truncated: variable decoder/embeddings/weight needs bytes",
    ),
    "safetensors header claiming 2^31 elements": (
        _safetensors_claiming_huge_shape,
        "is truncated: its header describes 8,589,",
    ),
    ".pt zip directory claiming 4 GiB records": (_pt_claiming_huge_record, "more than the file"),
    "config.json declaring 10^6 text positions": (
        _hf_claiming_huge_context,
        "config.json declares 1,000,000 text positions",
    ),
    ".pt dims declaring 10^6 text positions": (
        _pt_claiming_huge_context,
        "declares 1,000,000 text positions",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_header_is_refused_in_one_line(case, small, tmp_path):
    build, expected = HOSTILE[case]
    with pytest.raises(WeightsError, match=expected) as caught:
        load_weights(None, str(build(tmp_path, small)))
    assert "\n" not in str(caught.value)


_CHILD = """
import re, resource, sys
from pathlib import Path
from ane_core.errors import WeightsError
from whisper_ane.weights import load_weights

def peak():  # this process's own high-water mark (ru_maxrss would include its parent's)
    status = Path("/proc/self/status")
    if status.exists():
        return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read_text()).group(1)) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS

code = 0
try:
    load_weights(None, sys.argv[1])
except WeightsError as error:
    print(error)
    code = 2
print(f"peak={peak()}")
sys.exit(code)
"""


def peak_rss_of_load(checkpoint: Path) -> tuple[int, int, str]:
    """Exit code, peak resident bytes and output of ``load_weights`` run in a child process.

    The child reports its own peak (``VmHWM``): ``ru_maxrss`` from ``wait4`` would be at
    least the parent's peak, since Linux keeps the pre-exec memory's mark across ``exec``
    (and ``subprocess`` may vfork from this big test process).
    """
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(checkpoint)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    output = result.stdout.decode()
    peak = int(re.search(r"^peak=(\d+)$", output, re.MULTILINE).group(1))
    return result.returncode, peak, output


def test_hostile_headers_stay_under_1_gib_of_memory(small, tmp_path):
    """Each hostile checkpoint loaded in a fresh process: refused (exit 2), and that process
    peaks under 1 GiB, though each header claims gigabytes to terabytes."""
    peaks = {}
    for case, (build, expected) in HOSTILE.items():
        code, peak, output = peak_rss_of_load(build(tmp_path, small))
        assert code == 2 and expected in output, (case, output)
        peaks[case] = peak
    assert max(peaks.values()) < PEAK_RSS_LIMIT, peaks


# -- what the fuzzing found (kept as plain cases) ------------------------------------------


def test_odd_width_in_config_is_one_line_not_an_assert(small, tmp_path):
    """A flipped digit in config.json (d_model 8 -> 9) reached openai-whisper's sinusoids,
    whose ``assert channels % 2 == 0`` escaped as a bare AssertionError."""
    folder = write_hf_dir(tmp_path / "hf", small, d_model=9)
    with pytest.raises(WeightsError, match="declares an odd audio width 9; Whisper's is even"):
        load_weights(None, str(folder))


def test_ct2_without_num_heads_and_a_narrow_width_is_refused(small, tmp_path):
    """A CTranslate2 header whose ``num_heads`` name was damaged fell back to width // 64
    heads: 0 for a narrow model, loaded without a word and dividing by zero later."""
    variables = ct2_variables(small.state_dict, SMALL)
    del variables["encoder/num_heads"]
    folder = write_ct2(tmp_path / "ct2", variables)
    with pytest.raises(WeightsError, match="declares n_audio_head=0, not a positive whole"):
        load_weights(None, str(folder))


def test_ct2_scales_that_do_not_fit_their_rows_are_one_line(small, tmp_path):
    """int8 weights with a per-row scale of the wrong length broke numpy broadcasting."""
    variables = ct2_variables(small.state_dict, SMALL)
    name = "encoder/layer_0/ffn/linear_0/weight"
    weight = variables[name]
    scale = (127.0 / abs(weight).max(axis=1)).astype("float32")
    variables[name] = (weight * scale[:, None]).round().astype("int8")
    variables[f"{name}_scale"] = scale[:-1]
    folder = write_ct2(tmp_path / "ct2", variables)
    with pytest.raises(WeightsError, match=f"{name}_scale holds {len(scale) - 1} scales for"):
        load_weights(None, str(folder))
