"""Whisper's ``task_outputs``: transcripts decoded with given (compressed) packages."""

from __future__ import annotations

import pytest
from ane_core.compress import COMPRESSIONS
from ane_core.mil import op_counts
from ane_core.targets import Precision

from whisper_ane.architecture import WhisperArchitecture
from whisper_ane.runtime.package_backend import export_packages


def test_no_transcripts_without_every_package_or_without_files(tiny_en_weights, tmp_path):
    arch = WhisperArchitecture()
    partial = {"encoder": tmp_path / "e.mlpackage", "decoder": tmp_path / "d.mlpackage"}
    assert arch.task_outputs(tiny_en_weights, partial, ["a.wav"], Precision.FP16) is None
    every = {**partial, "cross_kv": tmp_path / "c.mlpackage"}
    assert arch.task_outputs(tiny_en_weights, every, [], Precision.FP16) is None


@pytest.mark.slow
def test_int8_packages_transcribe_jfk_like_fp16(tiny_en_weights, jfk_audio, tmp_path):
    """8-bit weights must not change the transcript (the issue's bar for 8-bit)."""
    arch = WhisperArchitecture()
    int8 = COMPRESSIONS["int8"]
    plain = export_packages(arch, tiny_en_weights, "tiny.en", Precision.FP16, tmp_path)
    packed = export_packages(
        arch, tiny_en_weights, "tiny.en", Precision.FP16, tmp_path, compression=int8
    )
    for component, path in packed.items():
        assert path.name == f"whisper-tiny.en-{component}-ane-fp16-int8.mlpackage"
        assert op_counts(path)["constexpr_affine_dequantize"] > 0
    files = [str(jfk_audio)]
    expected = arch.task_outputs(tiny_en_weights, plain, files, Precision.FP16)
    got = arch.task_outputs(tiny_en_weights, packed, files, Precision.FP16)
    assert "ask not what your country can do for you" in expected[str(jfk_audio)].lower()
    assert got == expected


@pytest.mark.slow
def test_transcripts_of_packages_built_with_build_options(tiny_en_weights, jfk_audio, tmp_path):
    """Packages exported with build options (one logits tensor, no alignment output) are
    read with those options (they decided the packages' outputs)."""
    arch = WhisperArchitecture()
    options = {"logits": "single", "alignment_heads": ()}
    packages = export_packages(
        arch, tiny_en_weights, "tiny.en", Precision.FP16, tmp_path, build_options=options
    )
    text = arch.task_outputs(tiny_en_weights, packages, [str(jfk_audio)], Precision.FP16, **options)
    assert "ask not what your country can do for you" in text[str(jfk_audio)].lower()
