"""The stateful ANE decoder (``--stateful``): caches as Core ML state, same logits.

Real tiny.en weights and real cross-attention keys/values (jfk), fed the sot sequence and
the first words of the transcript one token per step, as the decoding loop does.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import whisper
from ane_core.errors import UsageError
from ane_core.executor import Program
from ane_core.export import export_component
from ane_core.layers import MASK_VALUE
from ane_core.metrics import psnr
from ane_core.targets import Precision, parse_target

from whisper_ane.architecture import WhisperArchitecture
from whisper_ane.export.decoder import build_cross_kv, build_decoder, build_stateful_decoder
from whisper_ane.model.decoder_stateful import STATE_NAMES
from whisper_ane.runtime.decoding import DecoderSession, load_mel
from whisper_ane.runtime.package_backend import PackageRunner
from whisper_ane.runtime.transcription import make_transcriber
from whisper_ane.weights.source import build_whisper

N_STEPS = 8


@pytest.fixture(scope="module")
def steps(tiny_en_weights, jfk_audio):
    """Per step: (token, update mask, padding mask) and the window's ANE cross K/V."""
    stock = build_whisper(tiny_en_weights)
    with torch.no_grad():
        features = stock.encoder(load_mel(str(jfk_audio), stock.dims.n_mels)[None])
        native = features.transpose(1, 2)[:, :, None, :]  # (1, C, 1, 1500)
        cross_k, cross_v = build_cross_kv("ane", tiny_en_weights).module(native)
    tokenizer = whisper.tokenizer.get_tokenizer(False)
    words = tokenizer.encode(" And so my fellow Americans")
    tokens = [*tokenizer.sot_sequence_including_notimestamps, *words][:N_STEPS]
    n_ctx = tiny_en_weights.dims.n_text_ctx
    padding = torch.full((1, n_ctx), MASK_VALUE)
    sequence = []
    for position, token in enumerate(tokens):
        update = torch.zeros(1, n_ctx)
        update[0, position] = 1.0
        padding = padding.clone()
        padding[0, position] = 0.0
        sequence.append((torch.tensor([token], dtype=torch.int32), update, padding))
    return sequence, cross_k, cross_v


def _stateful_logits(module, steps) -> list[np.ndarray]:
    sequence, cross_k, cross_v = steps
    module.reset_cache()
    logits = []
    with torch.no_grad():
        for token, update, padding in sequence:
            chunks = module(token, update, padding, cross_k, cross_v)
            logits.append(torch.cat([c.reshape(-1) for c in chunks]).numpy())
    return logits


def test_stateful_module_matches_external_cache_decoder(tiny_en_weights, steps):
    """Same weights, same blend: logits equal the external-cache decoder's at every step."""
    sequence, cross_k, cross_v = steps
    stepper = build_decoder("ane", tiny_en_weights).module
    d = tiny_en_weights.dims
    key_cache = torch.zeros(d.n_text_layer, d.n_text_state, 1, d.n_text_ctx)
    value_cache = torch.zeros_like(key_cache)
    stateful = build_stateful_decoder(tiny_en_weights, cache_dtype=torch.float32).module
    got = _stateful_logits(stateful, steps)
    with torch.no_grad():
        for position, (token, update, padding) in enumerate(sequence):
            *chunks, k, v = stepper(
                token, key_cache, value_cache, update, padding, cross_k, cross_v
            )
            key_cache[..., position] = k[..., 0]
            value_cache[..., position] = v[..., 0]
            want = torch.cat([c.reshape(-1) for c in chunks]).numpy()
            assert psnr(want, got[position]) >= 100.0, position
            assert want.argmax() == got[position].argmax()
    # The state holds what the caller of the external-cache decoder wrote.
    n = len(sequence)
    torch.testing.assert_close(stateful.key_cache[..., :n], key_cache[..., :n])
    torch.testing.assert_close(stateful.value_cache[..., :n], value_cache[..., :n])


def test_stateful_build_io(tiny_en_weights):
    model = build_stateful_decoder(tiny_en_weights)
    names = [spec.name for spec in model.inputs]
    assert names == ["token", "kv_cache_update_mask", "key_padding_mask", "cross_k", "cross_v"]
    assert [spec.name for spec in model.outputs] == [f"logits_{i}" for i in range(4)]
    d = tiny_en_weights.dims
    cache_shape = (d.n_text_layer, d.n_text_state, 1, d.n_text_ctx)
    assert [(s.name, s.shape) for s in model.states] == [(n, cache_shape) for n in STATE_NAMES]
    assert model.module.key_cache.dtype == torch.float16  # Core ML states are float16


def test_stock_decoder_has_no_stateful_variant(tiny_en_weights):
    with pytest.raises(UsageError, match="only the ANE decoder"):
        build_decoder("stock", tiny_en_weights, stateful=True)
    assert WhisperArchitecture().stateful_components("stock") == ()


@pytest.fixture(scope="module")
def stateful_export(tiny_en_weights, tmp_path_factory):
    """The ``--stateful`` decoder exported once per precision (macOS15)."""
    results = {}

    def export(precision: Precision):
        if precision not in results:
            results[precision] = export_component(
                WhisperArchitecture(),
                size="tiny.en",
                component="decoder",
                variant="ane",
                weights=tiny_en_weights,
                precision=precision,
                target=parse_target("macOS15", precision=precision, stateful=True),
                output_dir=tmp_path_factory.mktemp("stateful"),
                stateful=True,
            )
        return results[precision]

    return export


@pytest.fixture(scope="module")
def torch_logits(tiny_en_weights, steps):
    """The PyTorch stateful module's logits, float16 cache (what the export traces)."""
    return _stateful_logits(build_stateful_decoder(tiny_en_weights).module, steps)


@pytest.mark.parametrize(("precision", "floor"), [(Precision.FP16, 35.0), (Precision.FP32, 90.0)])
def test_stateful_export_runs_with_state(stateful_export, torch_logits, steps, precision, floor):
    """The package, run by the reference executor with one state over all steps, gives the
    logits of the PyTorch module it was traced from (float16 cache, as Core ML holds it)."""
    result = stateful_export(precision)
    assert result.path.name == f"whisper-tiny.en-decoder-ane-{precision.value}-stateful.mlpackage"
    ops = result.op_counts
    assert ops["read_state"] == 2 and ops["write_state"] == 2, ops
    if precision is Precision.FP16:
        assert ops["cast"] == 0, ops
    program = Program.load(result.path)
    assert set(program.states) == set(STATE_NAMES)
    assert "key_cache" not in program.inputs
    want = torch_logits
    sequence, cross_k, cross_v = steps
    dtype = precision.numpy_dtype
    state = program.new_state()
    for position, (token, update, padding) in enumerate(sequence):
        outputs = program(
            {
                "token": token.numpy(),
                "kv_cache_update_mask": update.numpy().astype(dtype),
                "key_padding_mask": padding.numpy().astype(dtype),
                "cross_k": cross_k.numpy().astype(dtype),
                "cross_v": cross_v.numpy().astype(dtype),
            },
            state=state,
        )
        got = np.concatenate([outputs[f"logits_{i}"].reshape(-1) for i in range(4)])
        assert psnr(want[position], got.astype(np.float32)) >= floor, position
    assert np.abs(state["key_cache"][..., : len(sequence)]).max() > 0  # the package wrote it


def test_decoding_session_drives_the_stateful_package(
    stateful_export, torch_logits, steps, tiny_en_weights
):
    """The decoding loop's session on the stateful package (``--backend mil-stateful``):
    no cache input, the package's state is reset per session, logits as the module's."""
    runner = PackageRunner(
        stateful_export(Precision.FP16).path,
        build_stateful_decoder(tiny_en_weights),
        Precision.FP16,
    )
    sequence, cross_k, cross_v = steps
    cross = {"cross_k": cross_k.numpy(), "cross_v": cross_v.numpy()}
    for _ in range(2):  # a second session starts from a fresh state, so repeats the first
        session = DecoderSession(runner, cross)
        assert session.stateful and "key_cache" not in session.inputs
        for position, (token, _, _) in enumerate(sequence):
            got = session.step(int(token))
            assert psnr(torch_logits[position], got) >= 35.0, position


def test_cross_kv_as_state_is_written_once_and_gives_the_same_logits(
    stateful_export, steps, tiny_en_weights, tmp_path
):
    """``--stateful --cross-kv state``: the cross K/V are states the session writes once per
    window; per token only the token and the masks go in, and the logits equal those of the
    stateful package that takes the cross K/V as inputs (same FP16 values, same ops)."""
    options = {"cross_kv": "state"}
    result = export_component(
        WhisperArchitecture(),
        size="tiny.en",
        component="decoder",
        variant="ane",
        weights=tiny_en_weights,
        precision=Precision.FP16,
        target=parse_target("macOS15", precision=Precision.FP16, stateful=True),
        output_dir=tmp_path,
        stateful=True,
        build_options=options,
    )
    assert result.path.name == "whisper-tiny.en-decoder-ane-fp16-stateful-crosskv.mlpackage"
    assert result.cast_count == 0
    program = Program.load(result.path)
    assert sorted(program.states) == sorted([*STATE_NAMES, "cross_k", "cross_v"])
    assert list(program.inputs) == ["token", "kv_cache_update_mask", "key_padding_mask"]
    build = WhisperArchitecture().build("decoder", "ane", tiny_en_weights, stateful=True)
    reference = PackageRunner(stateful_export(Precision.FP16).path, build, Precision.FP16)
    build = WhisperArchitecture().build("decoder", "ane", tiny_en_weights, stateful=True, **options)
    runner = PackageRunner(result.path, build, Precision.FP16)
    sequence, cross_k, cross_v = steps
    cross = {"cross_k": cross_k.numpy(), "cross_v": cross_v.numpy()}
    kept, passed = DecoderSession(runner, cross), DecoderSession(reference, cross)
    assert "cross_k" not in kept.inputs and "cross_k" in passed.inputs
    np.testing.assert_array_equal(kept.state["cross_k"], cross_k.numpy().astype(np.float16))
    for token, _, _ in sequence:
        np.testing.assert_array_equal(kept.step(int(token)), passed.step(int(token)))
    with pytest.raises(UsageError, match="needs the stateful decoder"):
        WhisperArchitecture().build("decoder", "ane", tiny_en_weights, **options)


@pytest.mark.slow
def test_mil_stateful_backend_transcribes_like_stock_whisper(tiny_en_weights, jfk_audio):
    """FP32 packages with the stateful decoder (float16 cache) give stock whisper's text."""
    transcriber = make_transcriber(
        WhisperArchitecture(), tiny_en_weights, backend="mil-stateful", precision=Precision.FP32
    )
    text = transcriber(jfk_audio)["text"]
    stock = whisper.transcribe(
        build_whisper(tiny_en_weights), str(jfk_audio), temperature=0.0, fp16=False
    )["text"]
    assert text == stock.strip()
