"""The static-cache decoders against openai-whisper's decoder, step by step, and their exports.

Teacher forcing: whisper's own greedy tokens for the clip are fed to every decoder, so each
step's logits are compared on the same prefix (the encoder features are the stock ones,
so only the decoders differ).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import whisper
from ane_core.architecture import TensorSpec
from ane_core.errors import UsageError
from ane_core.export import export_component
from ane_core.inspect import inspect_package
from ane_core.layers import ANE_MAX_DIM, MASK_VALUE
from ane_core.metrics import psnr
from ane_core.targets import Precision, parse_target
from whisper.decoding import DecodingOptions

from whisper_ane.architecture import WhisperArchitecture
from whisper_ane.runtime.backends import ComponentRunner, torch_backend
from whisper_ane.runtime.decoding import DecoderSession, StaticCacheWhisper, load_mel, position_axis
from whisper_ane.weights.source import build_whisper


@pytest.fixture(scope="module")
def stock_model(tiny_en_weights):
    return build_whisper(tiny_en_weights)


@pytest.fixture(scope="module")
def jfk_case(stock_model, jfk_audio):
    """Stock features, whisper's greedy token sequence and its per-step logits."""
    mel = load_mel(str(jfk_audio), stock_model.dims.n_mels)
    with torch.no_grad():
        features = stock_model.encoder(mel[None])
        result = whisper.decode(
            stock_model, mel, DecodingOptions(temperature=0.0, fp16=False, language="en")
        )
        tokenizer = whisper.tokenizer.get_tokenizer(False)
        tokens = [*tokenizer.sot_sequence, *result.tokens, tokenizer.eot]
        logits = stock_model.decoder(torch.tensor([tokens]), features)[0]
    return features, tokens, logits


def _step_logits(weights, backend, precision, features, tokens, **options):
    model = StaticCacheWhisper(torch_backend(backend, weights, precision, **options))
    with torch.no_grad():
        return model.logits(torch.tensor([tokens]), features)[0]


@pytest.mark.parametrize(
    "backend", ["torch-ane", pytest.param("torch-stock", marks=pytest.mark.slow)]
)
def test_fp32_step_logits_match_whisper(tiny_en_weights, jfk_case, backend):
    features, tokens, reference = jfk_case
    logits = _step_logits(tiny_en_weights, backend, Precision.FP32, features, tokens)
    assert logits.shape == reference.shape
    for step in range(len(tokens)):
        assert psnr(reference[step], logits[step]) >= 100, f"step {step}"
    assert torch.equal(logits.argmax(-1), reference.argmax(-1))


def test_fp16_ane_step_logits_close_to_fp32(tiny_en_weights, jfk_case):
    features, tokens, reference = jfk_case
    logits = _step_logits(tiny_en_weights, "torch-ane", Precision.FP16, features, tokens)
    for step in range(len(tokens)):
        assert psnr(reference[step], logits[step]) >= 35, f"step {step}"
    assert torch.equal(logits.argmax(-1), reference.argmax(-1))


def test_unsplit_logits_equal_chunked(tiny_en_weights, jfk_case):
    features, tokens, _ = jfk_case
    chunked = _step_logits(tiny_en_weights, "torch-ane", Precision.FP32, features, tokens[:4])
    whole = _step_logits(
        tiny_en_weights, "torch-ane", Precision.FP32, features, tokens[:4], split_logits=False
    )
    assert torch.allclose(chunked, whole, rtol=0, atol=1e-4)


def test_decoder_io_names_and_chunks(tiny_en_weights):
    ane = WhisperArchitecture().build("decoder", "ane", tiny_en_weights)
    logits = [s for s in ane.outputs if s.name.startswith("logits")]
    assert [s.name for s in logits] == ["logits_0", "logits_1", "logits_2", "logits_3"]
    assert sum(s.shape[1] for s in logits) == tiny_en_weights.dims.n_vocab
    assert all(max(s.shape) <= ANE_MAX_DIM for s in [*ane.inputs, *ane.outputs])
    stock = WhisperArchitecture().build("decoder", "stock", tiny_en_weights)
    assert [s.name for s in stock.inputs] == [s.name for s in ane.inputs]


def _whisper_cross_attention(stock_model, features, tokens) -> list[torch.Tensor]:
    """Per layer, stock whisper's post-softmax cross-attention weights ``(H, T, n_audio_ctx)``
    for ``tokens`` in one forward pass (the hook whisper.timing.find_alignment installs)."""
    qks: list[torch.Tensor] = [None] * stock_model.dims.n_text_layer
    hooks = [
        block.cross_attn.register_forward_hook(
            lambda _, ins, outs, index=i: qks.__setitem__(index, outs[-1][0])
        )
        for i, block in enumerate(stock_model.decoder.blocks)
    ]
    with torch.no_grad(), whisper.model.disable_sdpa():
        stock_model.decoder(torch.tensor([tokens]), features)
    for hook in hooks:
        hook.remove()
    return [qk.float().softmax(dim=-1) for qk in qks]


@pytest.mark.parametrize("variant", ["ane", "stock"])
def test_alignment_weights_equal_whisper_cross_attention(
    tiny_en_weights, stock_model, jfk_case, variant
):
    """Step by step, the decoder's alignment output is whisper's own cross-attention of its
    alignment heads (the weights word timestamps read), in FP32."""
    features, tokens, _ = jfk_case
    heads = tiny_en_weights.alignment_heads
    model = WhisperArchitecture().build("decoder", variant, tiny_en_weights)
    assert model.outputs[-1].name == "alignment_weights"
    assert model.outputs[-1].shape == (1, len(heads), 1, 1500)
    assert model.metadata["alignment_heads"] == ",".join(f"{layer}:{head}" for layer, head in heads)
    backend = torch_backend(f"torch-{variant}", tiny_en_weights, Precision.FP32)
    whisper_model = StaticCacheWhisper(backend)
    session = whisper_model.new_session(features)
    expected = _whisper_cross_attention(stock_model, features, tokens)
    for position, token in enumerate(tokens):
        session.step(token)
        got = session.alignment_weights  # (H_a, n_audio_ctx)
        want = torch.stack([expected[layer][head, position] for layer, head in heads])
        assert psnr(want, torch.from_numpy(got)) >= 100, f"position {position}"


def test_alignment_heads_option(tiny_en_weights):
    arch = WhisperArchitecture()
    none = arch.build("decoder", "ane", tiny_en_weights, alignment_heads=())
    assert [s.name for s in none.outputs][-1] == "value_cache_update"
    two = arch.build("decoder", "ane", tiny_en_weights, alignment_heads=((3, 1), (0, 2)))
    assert two.outputs[-1].shape == (1, 2, 1, 1500) and two.metadata["alignment_heads"] == "3:1,0:2"
    with pytest.raises(UsageError, match="outside 4 layers x 6 heads"):
        arch.build("decoder", "ane", tiny_en_weights, alignment_heads=((4, 0),))


def test_ane_decoder_stores_the_tied_embedding_once(tiny_en_weights, tmp_path):
    """The token lookup and the logits read one table: FP16 weight bytes within 1% of the
    stock decoder's (which stores whisper's single embedding), where a second (n_vocab, C)
    table would add 38 MiB (+70%) for tiny.en."""
    sizes = {}
    for variant in ("ane", "stock"):
        result = export_component(
            WhisperArchitecture(),
            size="tiny.en",
            component="decoder",
            variant=variant,
            weights=tiny_en_weights,
            precision=Precision.FP16,
            target=parse_target("macOS13"),
            output_dir=tmp_path,
        )
        sizes[variant] = inspect_package(result.path).cost.weight_bytes
    assert abs(sizes["ane"] - sizes["stock"]) <= 0.01 * sizes["stock"], sizes
    table = 2 * tiny_en_weights.dims.n_vocab * tiny_en_weights.dims.n_text_state
    assert sizes["ane"] < 2 * table  # not two copies of the table


class _RecordingDecoder(ComponentRunner):
    """A fake decoder: returns keys/values equal to 10 * position + 1, and records inputs."""

    def __init__(self, n_ctx: int) -> None:
        self.inputs = [
            TensorSpec("key_cache", (2, 3, 1, n_ctx), ""),
            TensorSpec("value_cache", (2, 3, 1, n_ctx), ""),
        ]
        self.outputs = [
            TensorSpec("logits_1", (1, 2, 1, 1), ""),
            TensorSpec("logits_0", (1, 3, 1, 1), ""),
            TensorSpec("key_cache_update", (2, 3, 1, 1), ""),
            TensorSpec("value_cache_update", (2, 3, 1, 1), ""),
        ]
        self.float_dtype = np.dtype(np.float32)
        self.seen: list[dict[str, np.ndarray]] = []

    def __call__(self, inputs, state=None):
        self.seen.append({k: v.copy() for k, v in inputs.items()})
        position = int(np.argmax(inputs["kv_cache_update_mask"][0]))
        update = np.full((2, 3, 1, 1), 10.0 * position + 1, dtype=np.float32)
        return {
            "logits_0": np.arange(3, dtype=np.float32).reshape(1, 3, 1, 1),
            "logits_1": np.arange(3, 5, dtype=np.float32).reshape(1, 2, 1, 1),
            "key_cache_update": update,
            "value_cache_update": -update,
        }


def test_session_writes_one_slice_per_step_and_moves_the_masks():
    decoder = _RecordingDecoder(n_ctx=5)
    cross = {"cross_k": np.zeros(1), "cross_v": np.zeros(1)}
    session = DecoderSession(decoder, cross)
    for token in (7, 8, 9):
        logits = session.step(token)
    np.testing.assert_array_equal(logits, np.arange(5))  # chunks joined in index order
    last = decoder.seen[-1]
    assert last["token"].tolist() == [9] and last["token"].dtype == np.int32
    np.testing.assert_array_equal(last["kv_cache_update_mask"], [[0, 0, 1, 0, 0]])
    np.testing.assert_array_equal(last["key_padding_mask"], [[0, 0, 0, MASK_VALUE, MASK_VALUE]])
    np.testing.assert_array_equal(session.inputs["key_cache"][0, 0, 0], [1, 11, 21, 0, 0])
    np.testing.assert_array_equal(session.inputs["value_cache"][1, 2, 0], [-1, -11, -21, 0, 0])
    session.step(1)
    session.step(2)
    with pytest.raises(ValueError, match="holds 5 tokens"):
        session.step(3)


def test_position_axis_is_where_cache_and_update_differ():
    assert position_axis((4, 384, 1, 448), (4, 384, 1, 1)) == 3
    assert position_axis((4, 448, 384), (4, 1, 384)) == 1
    with pytest.raises(ValueError):
        position_axis((4, 448, 384), (4, 448, 384))


@pytest.mark.parametrize(
    ("component", "variant"),
    [
        ("decoder", "ane"),
        ("cross_kv", "ane"),
        pytest.param("decoder", "stock", marks=pytest.mark.slow),
        pytest.param("cross_kv", "stock", marks=pytest.mark.slow),
    ],
)
def test_fp16_export(tiny_en_weights, tmp_path, component, variant):
    result = export_component(
        WhisperArchitecture(),
        size="tiny.en",
        component=component,
        variant=variant,
        weights=tiny_en_weights,
        precision=Precision.FP16,
        target=parse_target("macOS13"),
        output_dir=tmp_path,
    )
    assert result.path.name == f"whisper-tiny.en-{component}-{variant}-fp16.mlpackage"
    ops = result.op_counts
    if variant == "ane":
        assert ops["cast"] == 0
    if component == "decoder":
        # attention, and the token lookup: one gather per vocabulary chunk (the ANE decoder
        # reads the logits' chunked table, stored once), one for stock
        assert ops["softmax"] > 0 and ops["gather"] == (4 if variant == "ane" else 1)
    else:
        assert ops["conv" if variant == "ane" else "linear"] == 2 * 4  # key, value x layers
