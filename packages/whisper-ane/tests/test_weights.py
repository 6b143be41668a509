"""Weight sources: CTranslate2 and openai checkpoints, download cache, random weights.

The name mapping is checked the only way that proves it: stock openai-whisper, given the
loaded weights, must transcribe real speech correctly.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import urllib.error
import urllib.request
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import whisper
from ane_core.errors import UsageError, WeightsError
from weight_writers import SMALL, ct2_variables, write_ct2
from whisper.model import ModelDimensions

from whisper_ane.weights import SIZES, LoadedWeights, build_whisper, load_weights
from whisper_ane.weights.ctranslate2 import Ct2Checkpoint, name_map
from whisper_ane.weights.random_init import dims_for, expected_shapes, random_state_dict

JFK = "ask not what your country can do for you"

TINY_EN = ModelDimensions(80, 1500, 384, 6, 4, 51864, 448, 384, 6, 4)


def _sha256(*paths: Path) -> str:
    digest = hashlib.sha256()
    for p in paths:
        digest.update(p.read_bytes())
    return digest.hexdigest()


def _transcribe(weights: LoadedWeights, audio: Path) -> dict:
    return whisper.transcribe(build_whisper(weights), str(audio), temperature=0, fp16=False)


@pytest.fixture(scope="module")
def tiny_random() -> LoadedWeights:
    return load_weights("tiny", "random")


# -- CTranslate2, real weights ----------------------------------------------------------


def test_tiny_en_ct2_dims_and_provenance(tiny_en_dir):
    weights = load_weights("tiny.en", str(tiny_en_dir))
    assert weights.dims == TINY_EN
    assert weights.source == f"ctranslate2:{tiny_en_dir}"
    assert weights.checkpoint_path == str(tiny_en_dir / "model.bin")
    assert weights.sha256 == _sha256(tiny_en_dir / "model.bin")
    assert all(t.dtype == torch.float32 for t in weights.state_dict.values())
    assert weights.alignment_heads == (
        (1, 0),
        (2, 0),
        (2, 5),
        (3, 0),
        (3, 1),
        (3, 2),
        (3, 3),
        (3, 4),
    )


def test_name_map_covers_whisper_state_dict_exactly():
    assert set(name_map(4, 4)) == set(whisper.model.Whisper(TINY_EN).state_dict())


def test_expected_shapes_match_a_real_model():
    real = whisper.model.Whisper(TINY_EN).state_dict()
    assert expected_shapes(TINY_EN) == {k: tuple(v.shape) for k, v in real.items()}


def test_build_whisper_is_strict_and_holds_the_weights(tiny_en_dir):
    weights = load_weights("tiny.en", str(tiny_en_dir))
    model = build_whisper(weights)
    assert not model.training
    state = model.state_dict()
    assert state.keys() == weights.state_dict.keys()
    assert all(torch.equal(state[k], v) for k, v in weights.state_dict.items())
    # A real model takes the same dict with strict=True (positional_embedding buffer included).
    whisper.model.Whisper(weights.dims).load_state_dict(weights.state_dict, strict=True)
    expected_heads = torch.zeros(4, 6, dtype=torch.bool)
    for layer, head in weights.alignment_heads:
        expected_heads[layer, head] = True
    assert torch.equal(model.alignment_heads.to_dense(), expected_heads)
    reference = whisper.model.Whisper(weights.dims)
    assert torch.equal(model.decoder.mask, reference.decoder.mask)


def test_fused_key_biases_are_zero_in_real_files(tiny_en_dir):
    """Dropping the k block of a fused bias is exact anyway (softmax); the files hold zeros."""
    with Ct2Checkpoint(tiny_en_dir) as ct2:
        for side in ("encoder", "decoder"):
            for i in range(4):
                assert not ct2._rows(f"{side}/layer_{i}/self_attention/linear_0/bias", 1, 3).any()
        for i in range(4):
            assert not ct2._rows(f"decoder/layer_{i}/attention/linear_1/bias", 0, 2).any()


def test_tiny_en_ct2_transcribes_jfk(tiny_en_dir, jfk_audio):
    result = _transcribe(load_weights("tiny.en", str(tiny_en_dir)), jfk_audio)
    assert JFK in result["text"].lower().replace(",", "")


def test_base_multilingual_from_parts_transcribes_jfk(base_dir, jfk_audio):
    weights = load_weights("base", str(base_dir))
    assert weights.dims == dims_for("base")
    assert weights.checkpoint_path == str(base_dir)
    assert weights.sha256 == _sha256(base_dir / "model.bin.part1", base_dir / "model.bin.part2")
    result = _transcribe(weights, jfk_audio)
    assert result["language"] == "en"
    assert JFK in result["text"].lower().replace(",", "")


def test_size_mismatch_names_the_right_size(tiny_en_dir):
    with pytest.raises(
        WeightsError, match=r"4 encoder layers of width 384 \(tiny\.en\) but --size base"
    ) as e:
        load_weights("base", str(tiny_en_dir))
    assert "--size tiny.en" in str(e.value)
    with pytest.raises(
        WeightsError, match=r"51864-token English-only vocabulary .* --size tiny was asked"
    ):
        load_weights("tiny", str(tiny_en_dir))


def test_truncated_ct2_model_is_refused(tiny_en_dir, tmp_path):
    data = (tiny_en_dir / "model.bin").read_bytes()
    shutil.copy(tiny_en_dir / "config.json", tmp_path / "config.json")
    for n in (3, 30, 1_000_000, len(data) - 1):
        (tmp_path / "model.bin").write_bytes(data[:n])
        with pytest.raises(WeightsError, match="truncated"):
            load_weights("tiny.en", str(tmp_path))


def test_missing_files_name_the_directory(tiny_en_dir, tmp_path):
    with pytest.raises(WeightsError, match=re.escape(f"{tmp_path} has no model.bin")):
        load_weights("tiny.en", str(tmp_path))
    (tmp_path / "model.bin").symlink_to(tiny_en_dir / "model.bin")
    with pytest.raises(WeightsError, match=re.escape(f"{tmp_path} has no config.json")):
        load_weights("tiny.en", str(tmp_path))


def test_missing_part_is_refused(base_dir, tmp_path):
    (tmp_path / "config.json").symlink_to(base_dir / "config.json")
    (tmp_path / "model.bin.part2").symlink_to(base_dir / "model.bin.part2")
    with pytest.raises(WeightsError, match="lacks model.bin.part1"):
        load_weights("base", str(tmp_path))


# -- CTranslate2, synthetic files -------------------------------------------------------


def _quantize(variables: dict[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    """CTranslate2's quantization: stored weight = round(w * scale).

    int8 has a per-row scale 127 / max|row|; int16 one global scale 2**10 / max|w|.
    """
    out = {}
    for name, value in variables.items():
        if name.endswith("/weight") and "linear_" in name:
            if dtype == "int8":
                scale = (127.0 / np.abs(value).max(axis=1)).astype(np.float32)
                out[name] = np.round(value * scale[:, None]).astype(np.int8)
            else:
                scale = np.array(2.0**10 / np.abs(value).max(), dtype=np.float32)
                out[name] = np.round(value * scale).astype(np.int16)
            out[f"{name}_scale"] = scale
        else:
            out[name] = value
    return out


@pytest.fixture(scope="module")
def small_state() -> dict[str, torch.Tensor]:
    state = random_state_dict(SMALL, seed=1)
    return {
        k: v + 0.01 * torch.randn(v.shape) if k.endswith(".bias") else v for k, v in state.items()
    }


def _expect_loaded(directory: Path, state: dict[str, torch.Tensor], atol: float = 0.0) -> None:
    with Ct2Checkpoint(directory) as ct2:
        assert ct2.dims == SMALL
        loaded = ct2.state_dict()
    assert loaded.keys() == state.keys()
    for name, tensor in state.items():
        torch.testing.assert_close(loaded[name], tensor, atol=atol, rtol=0, msg=name)


def test_synthetic_float32_and_float16_round_trip(small_state, tmp_path):
    variables = ct2_variables(small_state, SMALL)
    _expect_loaded(write_ct2(tmp_path / "f32", variables), small_state)
    half = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in variables.items()}
    as_half = {k: v.half().float() for k, v in small_state.items()}
    _expect_loaded(write_ct2(tmp_path / "f16", half), as_half)


def test_synthetic_bfloat16(small_state, tmp_path):
    variables = ct2_variables(small_state, SMALL)
    as_bf16 = {k: v.bfloat16().float() for k, v in small_state.items()}
    bits = {
        k: torch.from_numpy(np.ascontiguousarray(v))
        .bfloat16()
        .view(torch.int16)
        .numpy()
        .view("<u2")
        if v.dtype == np.float32
        else v
        for k, v in variables.items()
    }
    _expect_loaded(write_ct2(tmp_path, bits), as_bf16)


@pytest.mark.parametrize("dtype", ["int8", "int16"])
def test_synthetic_quantized_weights_are_dequantized(small_state, tmp_path, dtype):
    variables = _quantize(ct2_variables(small_state, SMALL), dtype)
    worst_step = max(float(1 / v.min()) for k, v in variables.items() if k.endswith("_scale"))
    _expect_loaded(write_ct2(tmp_path, variables), small_state, atol=worst_step / 2 + 1e-7)


def test_aliases_and_parts_are_followed(small_state, tmp_path):
    variables = ct2_variables(small_state, SMALL)
    variables["decoder/projection/weight"] = variables.pop("decoder/embeddings/weight")
    directory = write_ct2(
        tmp_path, variables, aliases={"decoder/embeddings/weight": "decoder/projection/weight"}
    )
    data = (directory / "model.bin").read_bytes()
    (directory / "model.bin").unlink()
    cut = [0, 7, 1000, 1001, len(data)]  # parts split mid-header and mid-tensor
    for i in range(1, len(cut)):
        (directory / f"model.bin.part{i}").write_bytes(data[cut[i - 1] : cut[i]])
    _expect_loaded(directory, small_state)
    with Ct2Checkpoint(directory) as ct2:
        assert ct2.sha256() == hashlib.sha256(data).hexdigest()


def test_unknown_dtype_is_refused(small_state, tmp_path):
    variables = ct2_variables(small_state, SMALL)
    directory = write_ct2(tmp_path, variables, dtype_codes={"encoder/conv1/bias": 9})
    with pytest.raises(WeightsError, match="unknown CTranslate2 data type 9"):
        Ct2Checkpoint(directory)


def test_unsupported_version_is_refused(small_state, tmp_path):
    directory = write_ct2(tmp_path, ct2_variables(small_state, SMALL), version=5)
    with pytest.raises(WeightsError, match="version 5, which is unsupported"):
        load_weights("tiny", str(directory))


def test_other_spec_and_garbage_are_refused(small_state, tmp_path):
    directory = write_ct2(tmp_path / "t", ct2_variables(small_state, SMALL), spec="TransformerSpec")
    with pytest.raises(WeightsError, match="TransformerSpec model, not Whisper"):
        Ct2Checkpoint(directory)
    garbage = tmp_path / "g"
    garbage.mkdir()
    (garbage / "config.json").write_text("{}")
    (garbage / "model.bin").write_bytes(b"this is not a CTranslate2 model at all" * 10)
    with pytest.raises(WeightsError, match="does not look like a CTranslate2 model.bin"):
        load_weights("tiny", str(garbage))


# -- openai checkpoints -----------------------------------------------------------------


def test_openai_checkpoint_round_trip(tiny_random, tmp_path):
    path = tmp_path / "tiny.pt"
    torch.save(
        {"dims": asdict(tiny_random.dims), "model_state_dict": dict(tiny_random.state_dict)}, path
    )
    loaded = load_weights("tiny", str(path))
    assert loaded.dims == tiny_random.dims
    assert loaded.state_dict.keys() == tiny_random.state_dict.keys()
    assert all(torch.equal(loaded.state_dict[k], v) for k, v in tiny_random.state_dict.items())
    assert loaded.sha256 == _sha256(path)
    assert loaded.checkpoint_path == str(path)
    assert loaded.source == f"openai:{path}"


def test_openai_half_checkpoint_is_widened(tiny_random, tmp_path):
    path = tmp_path / "tiny16.pt"
    half = {k: v.half() for k, v in tiny_random.state_dict.items()}
    torch.save({"dims": asdict(tiny_random.dims), "model_state_dict": half}, path)
    loaded = load_weights("tiny", str(path))
    assert all(v.dtype == torch.float32 for v in loaded.state_dict.values())
    assert all(torch.equal(loaded.state_dict[k], v.float()) for k, v in half.items())


class _RunsCode:
    """Unpickling this runs a shell command (what a malicious checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_code_is_refused_and_not_run(tiny_random, tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save(
        {"dims": asdict(tiny_random.dims), "model_state_dict": {"x": _RunsCode(marker)}}, path
    )
    with pytest.raises(WeightsError, match="refused: it holds pickled code"):
        load_weights("tiny", str(path))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"hello, I am a text file\n", "not a PyTorch"),
    ],
)
def test_non_checkpoint_files_are_refused(tmp_path, content, message):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=message):
        load_weights("tiny", str(path))


def test_truncated_and_foreign_checkpoints_are_refused(tiny_random, tmp_path):
    path = tmp_path / "tiny.pt"
    torch.save(
        {"dims": asdict(tiny_random.dims), "model_state_dict": dict(tiny_random.state_dict)}, path
    )
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated"):
        load_weights("tiny", str(path))
    torch.save(dict(tiny_random.state_dict), path)  # a bare state dict: no dims
    with pytest.raises(WeightsError, match="not an openai-whisper checkpoint"):
        load_weights("tiny", str(path))
    state = dict(tiny_random.state_dict)
    del state["decoder.ln.bias"]
    torch.save({"dims": asdict(tiny_random.dims), "model_state_dict": state}, path)
    with pytest.raises(WeightsError, match="lacks decoder.ln.bias"):
        load_weights("tiny", str(path))


def test_missing_path_is_refused(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_weights("tiny", str(tmp_path / "nope.pt"))


# -- random weights and sizes -----------------------------------------------------------


def test_random_weights_are_seeded(tiny_random):
    again = load_weights("tiny", "random")
    assert all(torch.equal(again.state_dict[k], v) for k, v in tiny_random.state_dict.items())
    other = load_weights("tiny", "random:1")
    assert not torch.equal(
        other.state_dict["decoder.token_embedding.weight"],
        tiny_random.state_dict["decoder.token_embedding.weight"],
    )
    assert load_weights("tiny", "random", seed=1).source == other.source == "random(seed=1)"
    assert tiny_random.sha256 is None and tiny_random.checkpoint_path is None


def test_random_weights_load_strictly(tiny_random):
    state = tiny_random.state_dict
    whisper.model.Whisper(tiny_random.dims).load_state_dict(state, strict=True)
    assert torch.equal(state["encoder.ln_post.weight"], torch.ones(384))
    assert torch.equal(state["encoder.blocks.0.mlp.0.bias"], torch.zeros(1536))
    assert torch.equal(state["encoder.positional_embedding"], whisper.model.sinusoids(1500, 384))
    assert 0.015 < float(state["encoder.blocks.0.mlp.0.weight"].std()) < 0.025


@pytest.mark.parametrize(
    ("size", "n_mels", "n_vocab", "layers", "text_layers", "width"),
    [
        ("tiny", 80, 51865, 4, 4, 384),
        ("tiny.en", 80, 51864, 4, 4, 384),
        ("base.en", 80, 51864, 6, 6, 512),
        ("medium", 80, 51865, 24, 24, 1024),
        ("large-v2", 80, 51865, 32, 32, 1280),
        ("large-v3", 128, 51866, 32, 32, 1280),
        ("large", 128, 51866, 32, 32, 1280),
        ("large-v3-turbo", 128, 51866, 32, 4, 1280),
        ("turbo", 128, 51866, 32, 4, 1280),
    ],
)
def test_size_table(size, n_mels, n_vocab, layers, text_layers, width):
    dims = dims_for(size)
    assert (dims.n_mels, dims.n_vocab, dims.n_audio_layer, dims.n_text_layer) == (
        n_mels,
        n_vocab,
        layers,
        text_layers,
    )
    assert dims.n_audio_state == dims.n_text_state == width
    assert dims.n_audio_head == dims.n_text_head == width // 64
    shapes = expected_shapes(dims)  # on the meta device: nothing allocated
    assert shapes["encoder.conv1.weight"] == (width, n_mels, 3)
    assert shapes["decoder.token_embedding.weight"] == (n_vocab, width)


def test_sizes_are_openai_whispers():
    assert set(SIZES) == set(whisper.available_models())


def test_unknown_size_and_bad_seed_are_usage_errors():
    with pytest.raises(UsageError, match="unknown --size 'huge'.*tiny, tiny.en, base"):
        load_weights("huge", "random")
    with pytest.raises(UsageError, match="integer seed"):
        load_weights("tiny", "random:abc")


# -- openai-whisper download cache ------------------------------------------------------


def _offline(*_args, **_kwargs):
    raise urllib.error.URLError("no network in tests")


@pytest.fixture
def whisper_cache(monkeypatch, tmp_path) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(urllib.request, "urlopen", _offline)
    return tmp_path / "whisper"


def test_offline_download_names_the_alternatives(whisper_cache, monkeypatch):
    def fail(url, root, in_memory):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(whisper, "_download", fail)
    with pytest.raises(WeightsError) as e:
        load_weights("tiny", None)
    message = str(e.value)
    assert "\n" not in message
    for option in ("--checkpoint PATH.pt", "--checkpoint CT2_DIR", "--weights random"):
        assert option in message


def test_cached_checkpoint_loads_without_network(whisper_cache, monkeypatch, tiny_random):
    whisper_cache.mkdir()
    path = whisper_cache / "tiny.pt"
    torch.save(
        {"dims": asdict(tiny_random.dims), "model_state_dict": dict(tiny_random.state_dict)}, path
    )
    sha = _sha256(path)
    monkeypatch.setitem(whisper._MODELS, "tiny", f"https://example.invalid/models/{sha}/tiny.pt")
    loaded = load_weights("tiny", None)
    assert loaded.sha256 == sha
    assert loaded.checkpoint_path == str(path)
    assert all(torch.equal(loaded.state_dict[k], v) for k, v in tiny_random.state_dict.items())
    assert loaded.alignment_heads  # openai-whisper's own heads for the official size


def test_cached_checkpoint_with_wrong_sha_is_an_error(whisper_cache, monkeypatch, tiny_random):
    whisper_cache.mkdir()
    path = whisper_cache / "tiny.pt"
    torch.save(
        {"dims": asdict(tiny_random.dims), "model_state_dict": dict(tiny_random.state_dict)}, path
    )
    monkeypatch.setitem(
        whisper._MODELS, "tiny", f"https://example.invalid/models/{'0' * 64}/tiny.pt"
    )
    with pytest.raises(WeightsError, match="does not match its SHA-256") as e:
        load_weights("tiny", None)
    assert "--weights random" in str(e.value)


def test_alignment_heads_come_from_the_source_then_whisper_s_table(tiny_en_dir, tmp_path):
    """CTranslate2's config.json names them; random weights and a .pt of an official size
    take whisper's own table (what whisper.load_model sets); no size, no table: None."""
    ct2 = load_weights("tiny.en", str(tiny_en_dir))
    assert ct2.alignment_heads == tuple(
        tuple(pair)
        for pair in json.loads((tiny_en_dir / "config.json").read_text())["alignment_heads"]
    )
    random = load_weights("tiny.en", "random")
    model = whisper.model.Whisper(random.dims)  # whisper's own reading of its table
    model.set_alignment_heads(whisper._ALIGNMENT_HEADS["tiny.en"])
    assert random.alignment_heads == tuple(map(tuple, model.alignment_heads.indices().T.tolist()))
    assert random.alignment_heads == ct2.alignment_heads  # the same heads, two routes
    checkpoint = tmp_path / "tiny.pt"
    torch.save(
        {"dims": asdict(random.dims), "model_state_dict": dict(random.state_dict)}, checkpoint
    )
    assert load_weights("tiny.en", str(checkpoint)).alignment_heads == random.alignment_heads
    assert load_weights(None, str(checkpoint)).alignment_heads is None
