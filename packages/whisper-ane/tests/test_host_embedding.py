"""``--embedding host``: the decoder takes the token's embedding row, the app looks it up.

What must hold: the FP16 program has no gather, no integer op and no cast (the default one
has a gather per vocabulary chunk and integer ops that pick the chunk); the table ships once
inside the package, listed in its manifest with its sha256 recorded; the program's weights
are not larger (the logits keep reading the one tied table); and decoding through the row
gives what decoding through the id gives, in FP32 exactly whisper's tokens.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import whisper
from ane_core.errors import UsageError
from ane_core.export import export_component
from ane_core.inspect import inspect_package
from ane_core.package_items import manifest_items
from ane_core.targets import Precision, parse_target
from weight_writers import SMALL

from whisper_ane.architecture import WhisperArchitecture
from whisper_ane.export.host_embedding import EMBEDDING_INPUT, TABLE_ITEM, TABLE_TENSOR
from whisper_ane.export.layouts import layout_plan
from whisper_ane.runtime.backends import torch_backend
from whisper_ane.runtime.decoding import StaticCacheWhisper, transcribe
from whisper_ane.runtime.package_backend import PackageRunner
from whisper_ane.runtime.parity_inputs import parity_inputs
from whisper_ane.runtime.session import DecoderSession
from whisper_ane.runtime.transcription import check_transcription
from whisper_ane.weights.random_init import random_state_dict
from whisper_ane.weights.source import LoadedWeights, build_whisper

CHUNKED = dataclasses.replace(SMALL, n_vocab=20000)
"""Small random dims whose vocabulary needs two logits chunks (the default lookup then
gathers from each and picks one with integer ops)."""

HOST = {"embedding": "host"}


@pytest.fixture(scope="module")
def small_weights() -> LoadedWeights:
    return LoadedWeights(CHUNKED, random_state_dict(CHUNKED, seed=4), "test", None, None)


@pytest.fixture(scope="module")
def exports(small_weights, tmp_path_factory):
    """FP16 decoders of the small weights, by ``(embedding, stateful)``."""
    out = tmp_path_factory.mktemp("host-embedding")
    results = {}
    for embedding in ("model", "host"):
        for stateful in (False, True):
            results[embedding, stateful] = export_component(
                WhisperArchitecture(),
                size=None,
                component="decoder",
                variant="ane",
                weights=small_weights,
                precision=Precision.FP16,
                target=parse_target("macOS15" if stateful else "macOS13"),
                output_dir=out,
                stateful=stateful,
                build_options={"embedding": embedding},
            )
    return results


def _census(path) -> dict[str, int]:
    report = inspect_package(path, with_compute_plan=False)
    rules = [finding.rule for finding in report.findings]
    return {
        "gather": report.op_census.get("gather", 0),
        "select": report.op_census.get("select", 0),
        "cast": report.op_census.get("cast", 0),
        "integer-compute": rules.count("integer-compute"),
        "gather findings": rules.count("gather"),
        "weight_bytes": report.cost.weight_bytes,
    }


@pytest.mark.parametrize("stateful", [False, True], ids=["native", "stateful"])
def test_fp16_decoder_has_no_gather_integer_op_or_cast(exports, stateful):
    default = _census(exports["model", stateful].path)
    host = _census(exports["host", stateful].path)
    assert default["gather"] == 2 and default["integer-compute"] > 0  # what the option removes
    assert {k: v for k, v in host.items() if k != "weight_bytes"} == {
        "gather": 0,
        "select": 0,
        "cast": 0,
        "integer-compute": 0,
        "gather findings": 0,
    }
    # The logits still read the one tied table in the program: no second copy inside.
    assert host["weight_bytes"] <= default["weight_bytes"]


def test_table_ships_once_beside_the_model_with_its_digest(exports, small_weights):
    result = exports["host", False]
    assert result.path.name.endswith("-hostembed.mlpackage")
    assert "-hostembed" not in exports["model", False].path.name
    assert TABLE_ITEM in manifest_items(result.path)
    assert TABLE_ITEM not in manifest_items(exports["model", False].path)
    table = np.load(result.path / "Data" / "ane" / TABLE_ITEM)
    want = small_weights.state_dict[TABLE_TENSOR].numpy().astype(np.float16)
    assert table.dtype == np.float16 and np.array_equal(table, want)
    report = inspect_package(result.path, with_compute_plan=False, verify=True)
    digests = {digest.path: digest for digest in report.digests}
    assert digests[f"Data/ane/{TABLE_ITEM}"].status == "matches"
    user = report.metadata["user_defined"]
    assert user["ane.embedding"] == "host"
    assert user[f"ane.item.{TABLE_ITEM}.shape"] == str((CHUNKED.n_vocab, CHUNKED.n_text_state))
    assert [spec["name"] for spec in report.inputs][0] == EMBEDDING_INPUT


@pytest.mark.parametrize("stateful", [False, True], ids=["native", "stateful"])
def test_package_session_looks_the_row_up_and_gives_the_token_id_logits(
    exports, small_weights, stateful
):
    """The session feeds the host package rows of the table it ships; its logits equal the
    token-id package's, step by step (both look up the same float16 row)."""
    arch = WhisperArchitecture()
    logits = {}
    for embedding in ("model", "host"):
        options = {"embedding": embedding, "stateful": stateful}
        model = arch.build("decoder", "ane", small_weights, **options)
        runner = PackageRunner(exports[embedding, stateful].path, model, Precision.FP16)
        d = CHUNKED
        kv_shape = (2, d.n_text_layer, d.n_text_state, 1, d.n_audio_ctx)
        kv = np.random.default_rng(0).standard_normal(kv_shape)
        session = DecoderSession(runner, {"cross_k": kv[0], "cross_v": kv[1]})
        assert (EMBEDDING_INPUT in session.inputs) == (embedding == "host")
        logits[embedding] = [session.step(token) for token in (3, 19999, 12000, 0)]
    for want, got in zip(logits["model"], logits["host"], strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "backend", ["torch-ane", pytest.param("torch-stock", marks=pytest.mark.slow)]
)
def test_fp32_host_embedding_transcript_equals_stock_whisper(tiny_en_weights, jfk_audio, backend):
    reference = whisper.transcribe(
        build_whisper(tiny_en_weights), str(jfk_audio), temperature=0.0, fp16=False
    )
    model = StaticCacheWhisper(torch_backend(backend, tiny_en_weights, Precision.FP32, **HOST))
    assert EMBEDDING_INPUT in {spec.name for spec in model.backend.decoder.inputs}
    result = transcribe(model, str(jfk_audio), temperature=0.0)
    tokens = [segment["tokens"] for segment in result["segments"]]
    assert tokens == [segment["tokens"] for segment in reference["segments"]]
    assert result["text"] == reference["text"]


@pytest.mark.parametrize(
    ("variant", "shape"),
    [("ane", (1, 384, 1, 1)), pytest.param("stock", (1, 1, 384), marks=pytest.mark.slow)],
)
def test_parity_inputs_give_the_steps_token_as_its_row(tiny_en_weights, variant, shape):
    """``ane parity --embedding host`` feeds the step's token as its float32 checkpoint row
    in the variant's layout, everything else as the token-id case."""
    table = tiny_en_weights.state_dict[TABLE_TENSOR]
    (by_id,) = parity_inputs("decoder", variant, tiny_en_weights)
    (by_row,) = parity_inputs("decoder", variant, tiny_en_weights, host_embedding=True)
    token = int(by_id.inputs[0][0])
    assert by_row.inputs[0].shape == shape
    assert torch.equal(by_row.inputs[0].reshape(-1), table[token])
    for a, b in zip(by_id.inputs[1:], by_row.inputs[1:], strict=True):
        assert torch.equal(a, b)


def test_whisperkit_layout_refuses_host_embedding_in_one_line():
    with pytest.raises(UsageError, match="input_ids, int32") as error:
        layout_plan("whisperkit", size="tiny", name=None, checkpoint="random", **HOST)
    assert "\n" not in str(error.value)
    with pytest.raises(UsageError, match="input_ids, int32"):
        check_transcription(backend="mil", precision=None, layout="whisperkit", options={}, **HOST)
    with pytest.raises(UsageError, match="fixed by the app"):  # whisper.cpp: no decoder
        layout_plan("whispercpp", size="tiny", name=None, checkpoint="random", **HOST)
