"""``--layout whispercpp`` from the real tiny.en weights, against whisper.cpp's contract.

The contract is ggml-org/whisper.cpp's: ``models/convert-whisper-to-coreml.py``
(``convert_encoder``: the I/O its converter declares, reproduced below call for call),
``src/coreml/whisper-encoder.mm`` (float32 ``logmel_data`` in, ``output`` copied out as
``output.count`` contiguous floats) and ``src/whisper.cpp``
(``whisper_get_coreml_path_encoder``: the file name it looks for).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import whisper.model
from ane_core.coreml_compile import compiled_name
from ane_core.executor import Program
from ane_core.layout_export import export_layout, plan_layout
from ane_core.metrics import psnr
from ane_core.mil import iter_operations, load_spec
from ane_core.targets import Precision, parse_target

from whisper_ane.architecture import WhisperArchitecture
from whisper_ane.export.layouts import whispercpp
from whisper_ane.export.materialize import component_state, materialize
from whisper_ane.runtime.decoding import load_mel
from whisper_ane.weights.source import build_whisper


@pytest.fixture(scope="module")
def packages(tmp_path_factory, tiny_en_weights):
    """``ggml-tiny.en-encoder.mlpackage`` at each precision, exported as ``ane export`` does."""
    arch = WhisperArchitecture()
    paths = {}
    for precision in Precision:
        directory = tmp_path_factory.mktemp(f"whispercpp-{precision.value}")
        plan = plan_layout(
            arch, "whispercpp", size="tiny.en", name=None, checkpoint=None, output_dir=directory
        )
        result = export_layout(
            arch,
            plan,
            size="tiny.en",
            weights=tiny_en_weights,
            precision=precision,
            target=parse_target("macOS13", precision=precision),
            output_dir=directory,
        )
        (package,) = result.packages
        assert package.path == directory / "ggml-tiny.en-encoder.mlpackage"
        paths[precision] = package.path
    return paths


@pytest.fixture(scope="module")
def converter_spec(tiny_en_weights, tmp_path_factory):
    """What whisper.cpp's own ``convert_encoder`` declares for tiny.en (its call, verbatim
    but for ``skip_model_load``, which Linux needs and which changes no description)."""
    import coremltools as ct

    d = tiny_en_weights.dims
    encoder = materialize(
        lambda: whisper.model.AudioEncoder(
            d.n_mels, d.n_audio_ctx, d.n_audio_state, d.n_audio_head, d.n_audio_layer
        ),
        component_state(tiny_en_weights, "encoder."),
    )
    input_shape = (1, d.n_mels, 3000)
    traced = torch.jit.trace(encoder, torch.randn(input_shape))
    model = ct.convert(
        traced,
        convert_to="mlprogram",
        inputs=[ct.TensorType(name="logmel_data", shape=input_shape)],
        outputs=[ct.TensorType(name="output")],
        compute_units=ct.ComputeUnit.ALL,
        compute_precision=ct.precision.FLOAT32,
        skip_model_load=True,
    )
    return model.get_spec()


def _io(spec):
    def describe(features):
        return [
            (f.name, tuple(f.type.multiArrayType.shape), f.type.multiArrayType.dataType)
            for f in features
        ]

    return describe(spec.description.input), describe(spec.description.output)


@pytest.mark.parametrize("precision", list(Precision))
def test_io_equals_what_whisper_cpp_converter_declares(packages, converter_spec, precision):
    ours = _io(load_spec(packages[precision]))
    assert ours == _io(converter_spec)
    assert ours == (
        [("logmel_data", (1, 80, 3000), 65568)],  # FLOAT32
        [("output", (1, 1500, 384), 65568)],
    )


def test_fp16_has_exactly_the_two_edge_casts_and_fp32_none(packages):
    for precision, expected in ((Precision.FP16, 2), (Precision.FP32, 0)):
        ops = [op for op in iter_operations(load_spec(packages[precision])) if op.type != "const"]
        casts = [op for op in ops if op.type == "cast"]
        assert len(casts) == expected, precision
    fp16_ops = [op for op in iter_operations(load_spec(packages[Precision.FP16]))]
    compute = [op for op in fp16_ops if op.type != "const"]
    assert compute[0].type == "cast" and compute[0].inputs["x"].arguments[0].name == "logmel_data"
    assert compute[-1].type == "cast" and compute[-1].outputs[0].name == "output"


@pytest.mark.parametrize(("precision", "floor"), [(Precision.FP16, 35.0), (Precision.FP32, 90.0)])
def test_output_matches_stock_encoder_on_jfk(
    packages, tiny_en_weights, jfk_audio, precision, floor
):
    mel = load_mel(str(jfk_audio), 80)[None]
    with torch.no_grad():
        expected = build_whisper(tiny_en_weights).encoder(mel)
    out = Program.load(packages[precision])({"logmel_data": mel.numpy()})["output"]
    assert out.dtype == np.float32 and out.shape == (1, 1500, 384)
    # whisper.cpp reads output.count floats in the declared shape's row-major order into a
    # ggml tensor with ne0 = n_state, ne1 = 1500: frame f, channel c at f * n_state + c.
    as_whisper_cpp_reads = np.ascontiguousarray(out).reshape(-1).reshape(1500, 384)
    assert psnr(expected[0], as_whisper_cpp_reads) >= floor


def whisper_get_coreml_path_encoder(path_bin: str) -> str:
    """whisper.cpp ``src/whisper.cpp`` ``whisper_get_coreml_path_encoder``, line for line."""
    pos = path_bin.rfind(".")
    if pos != -1:
        path_bin = path_bin[:pos]
    pos = path_bin.rfind("-")
    if pos != -1:
        sub = path_bin[pos:]
        if len(sub) == 5 and sub[1] == "q" and sub[3] == "_":
            path_bin = path_bin[:pos]
    return path_bin + "-encoder.mlmodelc"


@pytest.mark.parametrize("name", ["tiny.en", "base", "large-v3-turbo", "my-finetune"])
@pytest.mark.parametrize("model_file", ["ggml-{}.bin", "ggml-{}-q5_0.bin", "ggml-{}-q8_0.bin"])
def test_compiled_name_is_what_whisper_cpp_loads_beside_its_model(name, model_file):
    compiled = compiled_name(whispercpp.package_path(name))
    assert compiled == whisper_get_coreml_path_encoder(model_file.format(name))
