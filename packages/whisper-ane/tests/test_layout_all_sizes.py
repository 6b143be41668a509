"""Every Whisper size exports to both app layouts (random weights): the shapes each app
reads, 128 mel bins for large-v3 and turbo, no cast in WhisperKit's float16 models, two in
whisper.cpp's float32-edged encoder.

Slow (16.5 minutes on 2 shared cores, 13 GB peak resident with large-v3): ``pytest -m slow -k all_sizes``
or ``nox -s export-layouts``. The real-weight checks of each layout are in
``test_whispercpp_layout.py`` and ``test_whisperkit_layout.py``.
"""

from __future__ import annotations

import pytest
from ane_core.layout_export import export_layout, plan_layout
from ane_core.mil import load_spec, op_counts
from ane_core.targets import Precision, parse_target

from whisper_ane.architecture import WhisperArchitecture
from whisper_ane.weights.random_init import DIMENSIONS
from whisper_ane.weights.source import load_weights

SIZES = (
    "tiny",
    "tiny.en",
    "base",
    "base.en",
    "small",
    "small.en",
    "medium",
    "medium.en",
    "large-v1",
    "large-v2",
    "large-v3",
    "large-v3-turbo",
)
"""Every distinct openai-whisper size ("large" and "turbo" are aliases)."""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=SIZES)
def weights(request):
    """Random weights of one size, shared by both layouts' exports."""
    return request.param, load_weights(request.param, "random")


def _shapes(package):
    description = load_spec(package).description
    return {
        f.name: tuple(f.type.multiArrayType.shape)
        for f in (*description.input, *description.output)
    }


def _export(size, weights, layout, directory):
    arch = WhisperArchitecture()
    plan = plan_layout(arch, layout, size=size, name=None, checkpoint=None, output_dir=directory)
    return export_layout(
        arch,
        plan,
        size=size,
        weights=weights,
        precision=Precision.FP16,
        target=parse_target("macOS13"),
        output_dir=directory,
    )


def test_all_sizes_whispercpp(weights, tmp_path):
    size, loaded = weights
    d = DIMENSIONS[size]
    assert d.n_mels == (128 if size.startswith("large-v3") else 80)
    (package,) = _export(size, loaded, "whispercpp", tmp_path).packages
    assert package.path.name == f"ggml-{size}-encoder.mlpackage"
    assert _shapes(package.path) == {
        "logmel_data": (1, d.n_mels, 3000),
        "output": (1, 1500, d.n_audio_state),
    }
    assert package.cast_count == 2


def test_all_sizes_whisperkit(weights, tmp_path):
    size, loaded = weights
    d = DIMENSIONS[size]
    result = _export(size, loaded, "whisperkit", tmp_path)
    folder = tmp_path / f"openai_whisper-{size}"
    mel, encoder, decoder = (
        folder / f"{n}.mlpackage" for n in ("MelSpectrogram", "AudioEncoder", "TextDecoder")
    )
    assert _shapes(mel) == {"audio": (480000,), "melspectrogram_features": (1, d.n_mels, 1, 3000)}
    assert _shapes(encoder) == {
        "melspectrogram_features": (1, d.n_mels, 1, 3000),
        "encoder_output_embeds": (1, d.n_audio_state, 1, 1500),
    }
    cache = (1, d.n_text_layer * d.n_text_state, 1, 448)
    assert _shapes(decoder) == {
        "input_ids": (1,),
        "cache_length": (1,),
        "key_cache": cache,
        "value_cache": cache,
        "kv_cache_update_mask": (1, 448),
        "encoder_output_embeds": (1, d.n_text_state, 1, 1500),
        "decoder_key_padding_mask": (1, 448),
        "logits": (1, 1, d.n_vocab),
        "key_cache_updates": cache[:3] + (1,),
        "value_cache_updates": cache[:3] + (1,),
        "alignment_heads_weights": (1, 1500),
    }
    assert all(op_counts(p.path)["cast"] == 0 for p in result.packages)
