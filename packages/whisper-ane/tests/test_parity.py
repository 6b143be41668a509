"""Exported tiny.en packages, run by ane-core's reference executor, against stock whisper.

The packages are exported once per test session (on first use) into a session temp dir.
Thresholds are the issue's: FP32 export vs stock FP32 >= 90 dB, FP16 export >= 35 dB.
"""

from __future__ import annotations

import pytest
import torch
import whisper
from ane_core.executor import Program
from ane_core.export import export_component, package_name
from ane_core.metrics import psnr
from ane_core.targets import Precision, parse_target

from whisper_ane.architecture import WhisperArchitecture
from whisper_ane.runtime.decoding import StaticCacheWhisper, transcribe
from whisper_ane.runtime.package_backend import package_backend
from whisper_ane.weights import build_whisper

FLOOR = {Precision.FP32: 90.0, Precision.FP16: 35.0}


@pytest.fixture(scope="session")
def tiny_en_package(tmp_path_factory, tiny_en_weights):
    """``package(component, precision)``: the ANE export's path, exported on first use."""
    directory = tmp_path_factory.mktemp("tiny-en-packages")
    arch = WhisperArchitecture()

    def package(component: str, precision: Precision):
        path = directory / package_name("whisper", "tiny.en", component, "ane", precision)
        if not path.exists():
            export_component(
                arch,
                size="tiny.en",
                component=component,
                variant="ane",
                weights=tiny_en_weights,
                precision=precision,
                target=parse_target("macOS13", precision=precision),
                output_dir=directory,
            )
        return path

    return package


def _check_component(component, precision, package, weights, audio):
    arch = WhisperArchitecture()
    reference = arch.reference(component, weights)
    ane = arch.build(component, "ane", weights)
    (stock_case,) = arch.parity_inputs(component, "stock", weights, [str(audio)])
    (ane_case,) = arch.parity_inputs(component, "ane", weights, [str(audio)])
    assert stock_case.name == ane_case.name
    with torch.no_grad():
        expected = reference.module(*stock_case.inputs)
    expected = expected if isinstance(expected, tuple) else (expected,)
    program = Program.load(package(component, precision))
    feed = {
        spec.name: t.numpy().astype("int32" if spec.kind == "int" else precision.numpy_dtype)
        for spec, t in zip(ane.inputs, ane_case.inputs, strict=True)
    }
    outputs = program(feed)
    raw = [torch.from_numpy(outputs[spec.name].astype("float32")) for spec in ane.outputs]
    got = arch.to_reference_layout(component, "ane", raw)
    assert len(got) == len(expected)
    for want, have in zip(expected, got, strict=True):
        assert psnr(want, have) >= FLOOR[precision]


@pytest.mark.parametrize("precision", [Precision.FP32, Precision.FP16])
def test_encoder_package_matches_stock_on_real_speech(
    precision, tiny_en_package, tiny_en_weights, jfk_audio
):
    _check_component("encoder", precision, tiny_en_package, tiny_en_weights, jfk_audio)


@pytest.mark.slow
@pytest.mark.parametrize("precision", [Precision.FP32, Precision.FP16])
def test_cross_kv_package_matches_stock(precision, tiny_en_package, tiny_en_weights, jfk_audio):
    _check_component("cross_kv", precision, tiny_en_package, tiny_en_weights, jfk_audio)


@pytest.mark.slow
@pytest.mark.parametrize("precision", [Precision.FP32, Precision.FP16])
def test_decoder_step_package_matches_stock(precision, tiny_en_package, tiny_en_weights, jfk_audio):
    _check_component("decoder", precision, tiny_en_package, tiny_en_weights, jfk_audio)


def test_ane_outputs_come_back_in_stock_layout():
    arch = WhisperArchitecture()
    features = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(1, 5, 6)  # (B, S, C)
    ane = features.transpose(1, 2)[:, :, None, :]
    (back,) = arch.to_reference_layout("encoder", "ane", (ane,))
    assert torch.equal(back, features)
    chunks = (torch.ones(1, 3, 1, 1), 2 * torch.ones(1, 2, 1, 1))
    update = torch.randn(4, 6, 1, 1)
    logits, key, value = arch.to_reference_layout("decoder", "ane", (*chunks, update, update))
    assert logits.tolist() == [[[1.0, 1.0, 1.0, 2.0, 2.0]]]
    assert key.shape == (4, 1, 6) and torch.equal(key[:, 0], update[:, :, 0, 0])


@pytest.mark.slow
def test_mil_backend_transcribes_like_stock_whisper(tiny_en_package, tiny_en_weights, jfk_audio):
    """Decoding with the FP32 packages gives exactly stock openai-whisper's transcript."""
    packages = {c: tiny_en_package(c, Precision.FP32) for c in ("encoder", "cross_kv", "decoder")}
    model = StaticCacheWhisper(package_backend(packages, tiny_en_weights, Precision.FP32))
    text = transcribe(model, str(jfk_audio), temperature=0.0)["text"]
    stock = whisper.transcribe(
        build_whisper(tiny_en_weights), str(jfk_audio), temperature=0.0, fp16=False
    )["text"]
    assert text == stock
