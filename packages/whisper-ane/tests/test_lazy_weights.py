"""Weights read one component at a time: the same packages, byte for byte, with only the
component being exported in memory."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ane_core.export import export_component
from ane_core.targets import Precision, parse_target

from whisper_ane.architecture import WhisperArchitecture
from whisper_ane.weights.lazy import LazyStateDict
from whisper_ane.weights.source import LoadedWeights, load_weights


def _export_all(weights: LoadedWeights, directory: Path) -> dict[str, str]:
    """``ane export --component all`` as the command runs it; SHA-256 of every file but the
    manifests (coremltools names each package item with a fresh random UUID per save)."""
    arch = WhisperArchitecture()
    components = list(arch.components())
    for index, component in enumerate(components):
        export_component(
            arch,
            size="tiny.en",
            component=component,
            variant="ane",
            weights=weights,
            precision=Precision.FP16,
            target=parse_target("macOS13"),
            output_dir=directory,
        )
        arch.release_weights(weights, components[index + 1 :])
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != "Manifest.json"
    }


def test_lazy_weights_export_the_same_bytes_holding_one_component(tiny_en_dir, tmp_path):
    lazy = load_weights("tiny.en", str(tiny_en_dir))
    assert isinstance(lazy.state_dict, LazyStateDict) and lazy.state_dict.loaded() == []
    eager = load_weights("tiny.en", str(tiny_en_dir))
    eager.state_dict = dict(eager.state_dict)  # every tensor read up front, as before
    assert _export_all(lazy, tmp_path / "lazy") == _export_all(eager, tmp_path / "eager")
    assert lazy.state_dict.loaded() == []  # each component's tensors were handed back


def test_a_component_reads_only_its_own_tensors(tiny_en_dir):
    weights = load_weights("tiny.en", str(tiny_en_dir))
    WhisperArchitecture().build("encoder", "ane", weights)
    loaded = weights.state_dict.loaded()
    assert loaded and all(name.startswith("encoder.") for name in loaded)
    weights.state_dict.unload()
    WhisperArchitecture().build("cross_kv", "ane", weights)
    assert all(
        ".cross_attn.key." in n or ".cross_attn.value." in n for n in weights.state_dict.loaded()
    )


def test_random_weights_are_the_same_in_any_order():
    first, second = load_weights("tiny", "random:5"), load_weights("tiny", "random:5")
    names = list(first.state_dict)
    for name in reversed(names):  # made in the opposite order: same values
        assert second.state_dict[name].equal(first.state_dict[name]), name
    other = load_weights("tiny", "random:6").state_dict["decoder.token_embedding.weight"]
    assert not other.equal(first.state_dict["decoder.token_embedding.weight"])
