"""``ane_core.inspect.placement``: the shipped table parses and names a source per row, is
package data of the wheel, its rules bite on tiny MIL programs, and switches are counted
along program order."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from toy_packages import export_state_program, save_mil_program

from ane_core._coremltools import coremltools
from ane_core.fuzzing import check_damaged_read, damages
from ane_core.inspect import inspect_package
from ane_core.inspect.placement import (
    CONDITION_VALUES,
    CONDITIONS,
    DEVICES,
    PlacementTableError,
    count_switches,
    load_table,
    parse_table,
    predict_placement,
)
from ane_core.inspect.program import read_program
from ane_core.inspect.render import render_text
from ane_core.mil import load_spec

CORE = Path(__file__).resolve().parents[1]


def _lookup_program(tmp_path):
    """relu -> gather by the input ids -> add: an embedding lookup between two ANE ops."""
    ct = coremltools()
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    table = np.zeros((100, 8), np.float16)
    specs = [mb.TensorSpec((4, 8), dtype=types.fp16), mb.TensorSpec((4,), dtype=types.int32)]

    @mb.program(input_specs=specs, opset_version=ct.target.macOS13)
    def prog(x, ids):
        rows = mb.gather(x=table, indices=ids, axis=0)
        return mb.add(x=mb.relu(x=x), y=rows)

    return save_mil_program(prog, tmp_path / "lookup.mlpackage")


def _table(*rows):
    return parse_table({"rules": list(rows)}, "test table")


def _row(rule_id, device, ops=None, when=None):
    row = {
        "id": rule_id,
        "device": device,
        "claim": f"{rule_id} claim",
        "sources": [{"name": "a test", "url": ""}],
    }
    if ops is not None:
        row["ops"] = ops
    if when is not None:
        row["when"] = when
    return row


NATIVE = _row("native", "ane", ops=["relu", "add"])
GATHER = _row("gather", "cpu-gpu", ops=["gather"], when={"value_dependent": True})


def test_shipped_table_parses_and_every_row_names_a_source():
    table = load_table()
    assert len(table.rules) >= 10
    for rule in table.rules:
        assert rule.device in DEVICES and rule.claim.strip()
        assert rule.sources and all(source.name.strip() for source in rule.sources)
        assert set(rule.when) <= set(CONDITIONS)
    ids = {rule.id for rule in table.rules}
    assert {"gather", "integer-compute", "state-width-not-multiple-of-32"} <= ids


def test_a_rule_bites_and_removing_it_changes_the_prediction(tmp_path):
    program = read_program(load_spec(_lookup_program(tmp_path)))
    with_rule = predict_placement(program, _table(GATHER, NATIVE))
    assert [(op.op_type, op.device, op.rule) for op in with_rule.ops] == [
        ("gather", "cpu-gpu", "gather"),
        ("relu", "ane", "native"),
        ("add", "ane", "native"),
    ]
    assert with_rule.counts() == {"ane": 2, "cpu-gpu": 1, "unknown": 0}
    assert with_rule.switches == 1 and with_rule.to_dict()["not_ane_by_rule"] == {"gather": 1}

    without = predict_placement(program, _table(NATIVE))
    assert [op.device for op in without.ops] == ["unknown", "ane", "ane"]
    assert without.switches == 0 and without.switches_if_unknown_off == 1
    data = without.to_dict()
    assert data["off_ane"] == [] and [op["op_type"] for op in data["unknown"]] == ["gather"]


def test_first_matching_row_decides(tmp_path):
    program = read_program(load_spec(_lookup_program(tmp_path)))
    everything_int = _row("ints", "unknown", when={"dtypes": ["INT32"]})
    placed = predict_placement(program, _table(everything_int, GATHER, NATIVE))
    assert placed.ops[0].rule == "ints" and placed.ops[0].device == "unknown"


def test_shipped_table_keeps_a_narrow_state_off_the_ane(tmp_path):
    narrow = predict_placement(read_program(load_spec(export_state_program(tmp_path, 270))))
    aligned = predict_placement(read_program(load_spec(export_state_program(tmp_path, 256))))
    assert [(op.op_type, op.rule) for op in narrow.ops if op.device == "cpu-gpu"] == [
        ("read_state", "state-width-not-multiple-of-32"),
        ("write_state", "state-width-not-multiple-of-32"),
    ]
    assert aligned.counts()["cpu-gpu"] == 0 and aligned.switches == 0
    assert narrow.switches == 3  # read_state | add | write_state | relu


def test_shipped_table_predicts_the_lookup_off_the_ane(tmp_path):
    report = inspect_package(_lookup_program(tmp_path))
    data = report.to_dict()["placement"]
    assert data["ops_by_device"] == {"ane": 2, "cpu-gpu": 1, "unknown": 0}
    assert data["switches_per_call"] == 1 and data["off_ane"][0]["rule"] == "gather"
    assert [rule["id"] for rule in data["rules"]] == ["gather", "ane-native-ops"]
    assert "1 device switches per call" in report.summary_line()
    text = render_text(report)
    assert "Predicted placement" in text and "gather [cpu-gpu]: 1" in text
    assert "apple/ml-ane-transformers README" in text


@pytest.mark.parametrize(
    ("devices", "skipped", "worst"),
    [
        ([], 0, 0),
        (["ane", "ane"], 0, 0),
        (["ane", "cpu-gpu", "ane"], 2, 2),
        (["ane", "unknown", "ane"], 0, 2),
        (["cpu", "gpu", "ane"], 1, 1),  # cpu and gpu are both off the ANE
        (["unknown", "cpu-gpu", "unknown", "ane"], 1, 1),
    ],
)
def test_switches_along_program_order(devices, skipped, worst):
    assert count_switches(devices) == skipped
    assert count_switches(devices, unknown_off=True) == worst


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(sources=[]), "names no source"),
        (lambda r: r.update(sources=[{"url": "https://x"}]), "a source without a name"),
        (lambda r: r.update(device="npu"), "has device 'npu'"),
        (lambda r: r.update(when={"dtype_is": ["INT32"]}), "unknown conditions ['dtype_is']"),
        (lambda r: (r.pop("ops"), r.pop("when")), "matches every op"),
        (lambda r: r.update(colour="red"), "unknown keys ['colour']"),
        (lambda r: r.update(when={"dim_over": "16384"}), "gives dim_over '16384', not a positive"),
        (lambda r: r.update(when={"value_dependent": 1}), "not true or false"),
    ],
)
def test_bad_rows_are_one_line_errors(change, message):
    row = dict(GATHER)
    change(row)
    with pytest.raises(PlacementTableError, match=message.replace("[", r"\[")) as caught:
        _table(row)
    assert "\n" not in str(caught.value)


def test_bad_table_files_are_one_line_errors(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(PlacementTableError, match="is not JSON"):
        load_table(broken)
    with pytest.raises(PlacementTableError, match="cannot read"):
        load_table(tmp_path / "missing.json")
    repeated = tmp_path / "repeated.json"
    repeated.write_text(json.dumps({"rules": [GATHER, GATHER]}))
    with pytest.raises(PlacementTableError, match="repeats the rule ids"):
        load_table(repeated)


def test_every_condition_has_its_value_checked():
    assert set(CONDITION_VALUES) == set(CONDITIONS)


@pytest.fixture(scope="module")
def lookup_package(tmp_path_factory):
    return _lookup_program(tmp_path_factory.mktemp("lookup"))


@pytest.fixture(scope="module")
def shipped_bytes():
    return resources.files("ane_core.inspect").joinpath("placement_rules.json").read_bytes()


@given(data=st.data())
def test_damaged_table_property(shipped_bytes, lookup_package, data, tmp_path_factory):
    """A damaged table file: one clean PlacementTableError naming it, or a table that
    parses whole (a flip inside a claim or a number, a cut of trailing whitespace) and
    predicts without error."""
    name = "placement_rules.json"
    damage = data.draw(damages({name: len(shipped_bytes)}, {name: [(0, len(shipped_bytes))]}))
    root = tmp_path_factory.mktemp("table")
    (root / name).write_bytes(shipped_bytes)
    damage.apply(root)

    def accept(table):
        cut_blank = damage.kind == "truncate" and not shipped_bytes[damage.length :].strip()
        assert damage.kind == "flip" or cut_blank, f"{damage} was not noticed"
        assert all(rule.sources and rule.device in DEVICES for rule in table.rules)
        predict_placement(read_program(load_spec(lookup_package)), table)

    check_damaged_read(
        lambda: load_table(root / name),
        damage,
        root,
        file_bytes=len(shipped_bytes),
        accept=accept,
    )


def test_wheel_ships_the_table(tmp_path):
    """Built as a wheel (setuptools' own backend, as pip would) and unpacked where an install
    puts it, not the editable checkout, the table still loads."""
    source = tmp_path / "src-copy"
    shutil.copytree(CORE / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(CORE / name, source / name)
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    wheels.mkdir()
    build = "import sys, setuptools.build_meta as b; print(b.build_wheel(sys.argv[1]))"
    built = subprocess.run(
        [sys.executable, "-c", build, str(wheels)],
        cwd=source,
        capture_output=True,
        text=True,
        check=True,
    )
    wheel = wheels / built.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as archive:
        assert "ane_core/inspect/placement_rules.json" in archive.namelist()
        archive.extractall(site)  # a wheel's purelib files, as pip installs them
    probe = (
        "import ane_core, pathlib; from ane_core.inspect.placement import load_table; "
        "print(pathlib.Path(ane_core.__file__).parent.parent); print(len(load_table().rules))"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        check=True,
    )
    where, count = run.stdout.split()
    assert Path(where) == site and int(count) == len(load_table().rules)
