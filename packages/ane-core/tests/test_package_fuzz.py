"""Property-based fuzzing of the package readers (hypothesis): a toy package cut short at a
random length, with random bytes of its headers flipped, or with a file swapped for a Git LFS
pointer. The executor's loader and ``inspect --verify`` either raise one clean AneError or
load correctly; never another exception, never a hang, never an allocation the files do not
justify (see :mod:`ane_core.fuzzing`)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from toy_packages import MANIFEST, MODEL, WEIGHTS, export_toy

from ane_core.executor import Program
from ane_core.fuzzing import check_damaged_read, damaged_copy, damages
from ane_core.inspect import inspect_package
from ane_core.package_check import check_package
from ane_core.package_check.blob_storage import METADATA_BYTES, STORAGE_HEADER_BYTES
from ane_core.package_check.references import blob_references
from ane_core.package_size import bytes_on_disk

INPUT = {"x": np.random.default_rng(0).standard_normal((1, 64, 1, 32)).astype(np.float16)}


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    """The intact toy package, the files to damage with the bytes each reader trusts, and
    the intact outputs a correct load must reproduce."""
    package = export_toy(tmp_path_factory.mktemp("fuzz"))
    sizes = {str(rel): (package / rel).stat().st_size for rel in (WEIGHTS, MODEL, MANIFEST)}
    offsets = sorted({r.offset for r in blob_references(check_package(package).spec)})
    headers = {
        str(WEIGHTS): [(0, STORAGE_HEADER_BYTES)] + [(o, o + METADATA_BYTES) for o in offsets],
        str(MODEL): [(0, sizes[str(MODEL)])],  # the spec: every byte is structure
        str(MANIFEST): [(0, sizes[str(MANIFEST)])],
    }
    outputs = Program.load(package)(INPUT)
    report = _comparable(inspect_package(package, with_compute_plan=False, verify=True))
    return package, sizes, headers, outputs, report


def _comparable(report) -> dict:
    """A report as a dict, without the one thing a copy changes (its path)."""
    return {k: v for k, v in report.to_dict().items() if k != "path"}


@given(data=st.data())
def test_damaged_package_executor_load(subject, data):
    package, sizes, headers, intact, _ = subject
    damage = data.draw(damages(sizes, headers))
    with damaged_copy(package, damage) as copy:

        def accept(program):
            if damage.kind == "flip":
                return  # a flipped spec value (an epsilon, a name) loads: no digest covers it
            outputs = program(INPUT)
            assert outputs.keys() == intact.keys(), damage
            for name, value in intact.items():
                np.testing.assert_array_equal(outputs[name], value, err_msg=str(damage))

        check_damaged_read(
            lambda: Program.load(copy),
            damage,
            copy,
            file_bytes=bytes_on_disk(package),
            accept=accept,
        )


@given(data=st.data())
def test_damaged_package_inspect_verify(subject, data):
    package, sizes, headers, _, intact = subject
    damage = data.draw(damages(sizes, headers))
    with damaged_copy(package, damage) as copy:

        def accept(report):
            # --verify reads every byte of weight.bin: any change to it must be refused
            assert damage.file != str(WEIGHTS), f"{damage} passed --verify"
            if damage.kind != "flip":  # only a cut that changes nothing read may pass
                assert _comparable(report) == intact, f"{damage} was not noticed"

        check_damaged_read(
            lambda: inspect_package(copy, with_compute_plan=False, verify=True),
            damage,
            copy,
            file_bytes=bytes_on_disk(package),
            accept=accept,
        )
