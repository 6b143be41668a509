"""Architecture.package_items: extra files inside the exported package, registered in its
Manifest.json, named in its metadata, and never half-written."""

from __future__ import annotations

import errno
import hashlib
import json
import os

import numpy as np
import pytest

from ane_core.errors import OutputError, PackageError
from ane_core.executor import load_program
from ane_core.export import export_component
from ane_core.fuzzing import lfs_pointer_text
from ane_core.mil import load_spec
from ane_core.package_items import PackageItem, load_item, manifest_items
from ane_core.save import TEMP_PREFIX
from ane_core.targets import Precision, parse_target
from ane_core.testing import SEQ, WIDTH, ToyArchitecture


class ToyWithItems(ToyArchitecture):
    """The toy encoder shipping a lookup table (in the export's precision) and a text file."""

    def package_items(self, component, variant, weights, precision, **options):
        table = np.arange(12 * WIDTH, dtype=np.float32).reshape(12, WIDTH) / 7.0
        return [
            PackageItem("table.npy", table.astype(precision.numpy_dtype), "rows to look up"),
            PackageItem("notes.txt", f"{variant} {precision.value}".encode(), "a note"),
        ]


def _export(tmp_path, arch, precision=Precision.FP16):
    return export_component(
        arch,
        size="small",
        component="encoder",
        variant="ane",
        weights=arch.load_weights("small", None),
        precision=precision,
        target=parse_target("macOS13", precision=precision),
        output_dir=tmp_path,
    )


@pytest.mark.parametrize("precision", [Precision.FP16, Precision.FP32])
def test_items_are_inside_the_package_listed_in_the_manifest_and_the_metadata(tmp_path, precision):
    result = _export(tmp_path, ToyWithItems(), precision)
    package = result.path
    table = load_item(package, "table.npy")
    assert table.dtype == precision.numpy_dtype and table.shape == (12, WIDTH)
    want = (np.arange(12 * WIDTH, dtype=np.float32).reshape(12, WIDTH) / 7.0).astype(table.dtype)
    np.testing.assert_array_equal(table, want)
    assert load_item(package, "notes.txt") == f"ane {precision.value}".encode()
    assert (package / "Data" / "ane" / "table.npy").is_file()

    manifest = json.loads((package / "Manifest.json").read_text())["itemInfoEntries"]
    ours = {e["name"]: e for e in manifest.values() if e["author"] == "ane"}
    assert ours["table.npy"]["path"] == "ane/table.npy"
    assert ours["table.npy"]["description"] == "rows to look up"
    assert manifest_items(package) == {
        "table.npy": "Data/ane/table.npy",
        "notes.txt": "Data/ane/notes.txt",
    }

    meta = dict(load_spec(package).description.metadata.userDefined)
    assert meta["ane.item.table.npy.path"] == "Data/ane/table.npy"
    assert meta["ane.item.table.npy.shape"] == f"(12, {WIDTH})"
    assert meta["ane.item.table.npy.dtype"] == str(np.dtype(precision.numpy_dtype))
    assert meta["ane.item.notes.txt.description"] == "a note"
    assert "ane.item.notes.txt.shape" not in meta

    # The model itself is untouched: it still loads and runs.
    x = np.ones((1, WIDTH, 1, SEQ), dtype=precision.numpy_dtype)
    (y,) = load_program(package)({"x": x}).values()
    assert np.isfinite(np.asarray(y, dtype=np.float32)).all()


def test_architectures_ship_no_items_by_default(tmp_path):
    result = _export(tmp_path, ToyArchitecture())
    assert manifest_items(result.path) == {}
    assert not (result.path / "Data" / "ane").exists()
    meta = dict(load_spec(result.path).description.metadata.userDefined)
    assert not any(key.startswith("ane.item.") for key in meta)
    with pytest.raises(OutputError, match="holds no item 'table.npy'"):
        load_item(result.path, "table.npy")


def test_damaged_items_are_one_line_and_their_digests_recorded(tmp_path):
    """Items travel with the package from elsewhere: cut short or an LFS pointer, they are a
    PackageError naming the file; export records their sha256 for ``inspect --verify``."""
    package = _export(tmp_path, ToyWithItems()).path
    table = package / "Data" / "ane" / "table.npy"
    meta = dict(load_spec(package).description.metadata.userDefined)
    assert meta["ane.sha256.Data/ane/table.npy"] == hashlib.sha256(table.read_bytes()).hexdigest()
    assert meta["ane.sha256.Data/ane/notes.txt"]
    table.write_bytes(table.read_bytes()[:-10])
    with pytest.raises(PackageError, match=r"table\.npy is truncated: its header describes"):
        load_item(package, "table.npy")
    notes = package / "Data" / "ane" / "notes.txt"
    notes.write_bytes(lfs_pointer_text("ab" * 32, 9))
    with pytest.raises(PackageError, match=r"notes\.txt is a Git LFS pointer"):
        load_item(package, "notes.txt")
    notes.unlink()
    with pytest.raises(PackageError, match=r"lacks Data/ane/notes\.txt, which its Manifest"):
        load_item(package, "table.npy")


def test_disk_full_while_writing_an_item_leaves_no_package(tmp_path, monkeypatch):
    """The model is saved, the second item fails: nothing is published, no temp dir stays."""
    real = PackageItem.to_bytes

    def fail_on_second(self):
        if self.name == "notes.txt":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self)

    monkeypatch.setattr(PackageItem, "to_bytes", fail_on_second)
    with pytest.raises(OutputError, match="No space left on device") as info:
        _export(tmp_path, ToyWithItems())
    assert "\n" not in str(info.value)
    assert os.listdir(tmp_path) == []


def test_repeated_item_names_are_refused_and_leave_nothing(tmp_path):
    """Two items of one name would overwrite each other's file."""

    class DuplicateOnDisk(ToyWithItems):
        def package_items(self, component, variant, weights, precision, **options):
            item = super().package_items(component, variant, weights, precision)[1]
            return [item, PackageItem("notes.txt", b"again", "x")]

    with pytest.raises(ValueError, match="package item names repeat: notes.txt"):
        _export(tmp_path, DuplicateOnDisk())
    assert [p for p in os.listdir(tmp_path) if p.startswith(TEMP_PREFIX)] == []
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "content"),
    [("../escape.npy", b""), ("", b""), (".hidden", b""), ("table.bin", np.zeros(2))],
)
def test_item_names_are_plain_file_names(name, content):
    with pytest.raises(ValueError):
        PackageItem(name, content, "bad")
