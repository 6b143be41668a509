"""ane_core.package_check on an exported toy package: each damage a package from elsewhere
arrives with is one PackageError line naming the file, for check_package, the executor's
loader and inspect alike; digests recorded at export catch what headers cannot."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from pathlib import Path

import pytest
from toy_packages import MODEL, WEIGHTS, export_toy

from ane_core.errors import PackageError, UsageError
from ane_core.executor import Program
from ane_core.fuzzing import lfs_pointer_text
from ane_core.inspect import inspect_package
from ane_core.package_check import DIGEST_PREFIX, check_package, verify_digests
from ane_core.package_check.references import blob_references


@pytest.fixture(scope="module")
def toy_package(tmp_path_factory) -> Path:
    return export_toy(tmp_path_factory.mktemp("toy"))


@pytest.fixture
def package(toy_package, tmp_path) -> Path:
    """A fresh copy of the toy package for one test to damage."""
    return Path(shutil.copytree(toy_package, tmp_path / toy_package.name))


def _first_blob_offset(package: Path) -> int:
    return min(r.offset for r in blob_references(check_package(package).spec))


def _patch(path: Path, offset: int, fmt: str, value: int) -> None:
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, value)
    path.write_bytes(bytes(data))


def _rewrite_spec(package: Path, edit) -> None:
    spec = check_package(package).spec
    edit(spec)
    (package / MODEL).write_bytes(spec.SerializeToString())


def _rewrite_blob_reference(package: Path, **fields) -> None:
    """Change the first ``blobFileValue`` of the program (its file name or offset)."""

    def edit(spec):
        for op in spec.mlProgram.functions["main"].block_specializations["CoreML6"].operations:
            val = op.attributes.get("val")
            if val is not None and val.WhichOneof("value") == "blobFileValue":
                for name, value in fields.items():
                    setattr(val.blobFileValue, name, value)
                return

    _rewrite_spec(package, edit)


def test_intact_package_is_checked_and_counted(toy_package):
    checked = check_package(toy_package)
    assert checked.spec.WhichOneof("Type") == "mlProgram"
    (weight_file,) = checked.weight_files
    assert weight_file.path == toy_package / WEIGHTS
    assert weight_file.size == (toy_package / WEIGHTS).stat().st_size
    assert weight_file.blobs == len({r.offset for r in blob_references(checked.spec)}) > 0


def _damage(package: Path, damage: str) -> Path:
    """Apply ``damage`` to ``package``; returns the path to hand to the readers."""
    weights = package / WEIGHTS
    first = _first_blob_offset(package) if weights.exists() else 0
    if damage == "weight.bin cut to half":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "weight.bin is an LFS pointer":
        weights.write_bytes(lfs_pointer_text("ab" * 32, weights.stat().st_size))
    elif damage == "weight.bin shorter than its header":
        weights.write_bytes(b"\0" * 10)
    elif damage == "weight.bin storage version":
        _patch(weights, 4, "<I", 3)
    elif damage == "blob sentinel":
        _patch(weights, first, "<I", 0x12345678)
    elif damage == "blob dtype":
        _patch(weights, first + 4, "<I", 2)  # Float32
    elif damage == "blob size":
        _patch(weights, first + 8, "<Q", 6)
    elif damage == "blob data offset past the end":
        _patch(weights, first + 16, "<Q", 2**40)
    elif damage == "weight.bin missing":
        weights.unlink()
    elif damage == "weights folder missing":
        shutil.rmtree(weights.parent)
    elif damage == "garbage model.mlmodel":
        (package / MODEL).write_bytes(bytes(range(256)) * 20)
    elif damage == "empty model.mlmodel":
        (package / MODEL).write_bytes(b"")
    elif damage == "model.mlmodel is an LFS pointer":
        (package / MODEL).write_bytes(lfs_pointer_text("cd" * 32, 75_328))
    elif damage == "no Manifest.json":
        (package / "Manifest.json").unlink()
    elif damage == "Manifest.json not JSON":
        (package / "Manifest.json").write_bytes(b"\x00{{")
    elif damage == "Manifest.json item outside the package":
        manifest = json.loads((package / "Manifest.json").read_text())
        for entry in manifest["itemInfoEntries"].values():
            entry["path"] = "../../" + entry["path"]
        (package / "Manifest.json").write_text(json.dumps(manifest))
    elif damage == "weights read from outside the package":
        _rewrite_blob_reference(package, fileName="@model_path/../../../etc/passwd")
    elif damage == "weight read from the file header":
        _rewrite_blob_reference(package, offset=0)
    elif damage == "a plain file":
        shutil.rmtree(package)
        package.write_text("not a folder\n")
    return package


DAMAGES = {
    # damage: what the one line says (besides the file it names)
    "weight.bin cut to half": "weight.bin is truncated: the weight of",
    "weight.bin is an LFS pointer": "weight.bin is a Git LFS pointer, not the file itself",
    "weight.bin shorter than its header": "weight.bin is truncated: 10 bytes, shorter than",
    "weight.bin storage version": "is not a Core ML weight file (storage version 3, expected 2)",
    "blob sentinel": "has no blob header (sentinel 0x12345678, expected 0xdeadbeef)",
    "blob dtype": "is stored as FLOAT32 but the program reads FLOAT16",
    "blob size": "holds 6 bytes but the program reads",
    "blob data offset past the end": "weight.bin is truncated: the weight of",
    "weight.bin missing": "weight.bin is missing: the program reads",
    "weights folder missing": "lacks Data/com.apple.CoreML/weights, which its Manifest.json lists",
    "garbage model.mlmodel": "model.mlmodel is not a Core ML model spec",
    "empty model.mlmodel": "model.mlmodel is not a Core ML model spec (it holds no model)",
    "model.mlmodel is an LFS pointer": "model.mlmodel is a Git LFS pointer",
    "no Manifest.json": "is not an .mlpackage directory: it has no Manifest.json",
    "Manifest.json not JSON": "Manifest.json is damaged (not JSON)",
    "Manifest.json item outside the package": "points outside the package",
    "weights read from outside the package": "which is not a file in its weights folder",
    "weight read from the file header": "at byte 0, inside the file's 64-byte header",
    "a plain file": "is not an .mlpackage directory (it is a file",
}


@pytest.mark.parametrize("damage", list(DAMAGES))
@pytest.mark.parametrize("reader", ["check_package", "executor", "inspect"])
def test_each_damage_is_one_package_error_line(package, damage, reader):
    path = _damage(package, damage)
    read = {
        "check_package": check_package,
        "executor": Program.load,
        "inspect": lambda p: inspect_package(p, with_compute_plan=False),
    }[reader]
    with pytest.raises(PackageError) as caught:
        read(path)
    message = str(caught.value)
    assert DAMAGES[damage] in message, message
    assert str(package) in message and "\n" not in message
    assert isinstance(caught.value, UsageError)  # callers catching usage errors still do


@pytest.mark.parametrize(
    ("compression", "target"), [("int8", "macOS15"), ("palettize4", "macOS15")]
)
def test_compressed_weights_are_checked_too(tmp_path, compression, target):
    """iOS18 constexpr ops bind their stored values to inputs, not attributes: found too."""
    package = export_toy(tmp_path, compression, target)
    references = blob_references(check_package(package).spec)
    assert {r.dtype for r in references} - {"FLOAT16"}, "no compressed (non-float16) blobs"
    weights = package / WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-1])
    with pytest.raises(PackageError, match="is truncated: the weight of"):
        Program.load(package)


# -- digests: what headers cannot see ----------------------------------------------------


def test_export_records_the_weight_file_digest(toy_package):
    checked = check_package(toy_package)
    recorded = dict(checked.spec.description.metadata.userDefined)
    key = DIGEST_PREFIX + WEIGHTS.as_posix()
    assert recorded[key] == hashlib.sha256((toy_package / WEIGHTS).read_bytes()).hexdigest()
    (digest,) = verify_digests(checked)
    assert digest.path == WEIGHTS.as_posix() and digest.status == "matches"


def test_verify_catches_changed_weight_bytes_that_headers_cannot(package):
    weights = package / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # inside the last blob's data: every header still in order
    weights.write_bytes(bytes(data))
    report = inspect_package(package, with_compute_plan=False)  # headers: fine
    assert report.digests is None
    with pytest.raises(PackageError, match="its bytes changed after export") as caught:
        inspect_package(package, with_compute_plan=False, verify=True)
    assert str(weights) in str(caught.value)


def test_package_without_a_record_reports_its_digest(package):
    def forget(spec):
        for key in [
            k for k in spec.description.metadata.userDefined if k.startswith(DIGEST_PREFIX)
        ]:
            del spec.description.metadata.userDefined[key]

    _rewrite_spec(package, forget)
    report = inspect_package(package, with_compute_plan=False, verify=True)
    (digest,) = report.digests
    assert digest.status == "not recorded" and digest.recorded is None
    assert digest.sha256 == hashlib.sha256((package / WEIGHTS).read_bytes()).hexdigest()
    assert report.to_dict()["verified"][0]["status"] == "not recorded"


def test_recorded_file_that_is_gone_is_named(package):
    def claim(spec):
        spec.description.metadata.userDefined[DIGEST_PREFIX + "Data/ane/table.npy"] = "00" * 32

    _rewrite_spec(package, claim)
    with pytest.raises(PackageError, match="lacks Data/ane/table.npy, whose digest it records"):
        inspect_package(package, with_compute_plan=False, verify=True)


def test_spec_that_parses_but_is_no_program_is_one_line_for_the_executor(package):
    """Found by the fuzzing: a flipped byte in a value name still parses as protobuf, and
    coremltools' loader then raised a bare KeyError (or ValueError, AssertionError...)."""

    def rename_an_input(spec):
        block = spec.mlProgram.functions["main"].block_specializations["CoreML6"]
        for op in block.operations:
            for binding in op.inputs.values():
                for argument in binding.arguments:
                    if argument.WhichOneof("binding") == "name":
                        argument.name = "no_such_value"
                        return

    _rewrite_spec(package, rename_an_input)
    check_package(package)  # the file is whole; the program is what is wrong
    with pytest.raises(PackageError, match=r"holds a program coremltools cannot read \(KeyError"):
        Program.load(package)
