"""App layouts (``--layout``) on the toy plugin: plans, the staged export, parity, compiling.

The toy has two layouts besides ``native`` (``ane_core.testing.TOY_LAYOUTS``): ``flat``, one
sequence-first package with float32 I/O at the top of the output directory, and ``bundle``,
a folder holding two packages (one in a subfolder) and a ``config.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ane_core import plugins
from ane_core.architecture import NATIVE, Architecture, LayoutPackage, LayoutPlan
from ane_core.errors import OutputError, UsageError
from ane_core.executor import Program
from ane_core.layout_export import (
    export_layout,
    find_layout,
    layout_precisions,
    plan_layout,
)
from ane_core.metrics import psnr
from ane_core.mil import load_spec
from ane_core.parity import check_parity
from ane_core.save import TEMP_PREFIX
from ane_core.targets import Precision, parse_target

FLOAT32, FLOAT16 = 65568, 65552  # Core ML ArrayDataType values


def _export(tmp_path, layout, precision=Precision.FP16, force=False, **kwargs):
    arch = plugins.get_architecture("toy")
    plan = plan_layout(
        arch, layout, size="small", name=None, checkpoint=None, output_dir=tmp_path, force=force
    )
    return export_layout(
        arch,
        plan,
        size="small",
        weights=arch.load_weights("small", None),
        precision=precision,
        target=parse_target("macOS13", precision=precision),
        output_dir=tmp_path,
        force=force,
        **kwargs,
    )


def test_flat_layout_is_one_package_with_float32_io_and_two_casts_at_fp16(toy_plugin, tmp_path):
    result = _export(tmp_path, "flat")
    (package,) = result.packages
    assert result.outputs == [tmp_path / "toy-small-flat.mlpackage"] == [package.path]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "toy-small-flat.mlpackage"
    ]  # no staging left
    spec = load_spec(package.path)
    assert [i.type.multiArrayType.dataType for i in spec.description.input] == [FLOAT32]
    assert [o.type.multiArrayType.dataType for o in spec.description.output] == [FLOAT32]
    assert package.cast_count == 2  # the float16 program's two float32 edges
    assert dict(spec.description.metadata.userDefined)["ane.layout"] == "flat"
    assert result.compile_commands == [
        f"xcrun coremlcompiler compile {package.path} {tmp_path}"
    ]  # off a Mac: the command


def test_flat_layout_fp32_computes_in_float32_without_casts(toy_plugin, tmp_path):
    (package,) = _export(tmp_path, "flat", Precision.FP32).packages
    assert package.cast_count == 0


def test_flat_package_computes_what_its_reference_does(toy_plugin, tmp_path):
    arch = plugins.get_architecture("toy")
    weights = arch.load_weights("small", None)
    (package,) = _export(tmp_path, "flat").packages
    (case,) = arch.layout_parity_inputs("flat", "encoder", weights)
    plan = arch.layout_plan("flat", size="small", name=None, checkpoint=None)
    reference = plan.packages[0].reference(weights).module(*case.inputs).detach()
    out = Program.load(package.path)({"x": case.inputs[0].numpy()})["y"]
    assert out.dtype == np.float32
    assert psnr(reference, out) >= 35


def test_bundle_layout_is_one_folder_with_packages_and_files(toy_plugin, tmp_path):
    result = _export(tmp_path, "bundle")
    root = tmp_path / "toy-small"
    assert result.outputs == [root]
    assert [p.path for p in result.packages] == [
        root / "Ane.mlpackage",
        root / "models" / "Stock.mlpackage",
    ]
    assert json.loads((root / "config.json").read_text()) == {"width": 64}
    assert result.notes == ["toy-small: toy bundle"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy-small"]
    assert len(result.compile_commands) == 2


def test_name_replaces_the_default_in_paths(toy_plugin, tmp_path):
    arch = plugins.get_architecture("toy")
    plan = arch.layout_plan("bundle", size="small", name="mine", checkpoint=None)
    assert plan.outputs == ["mine"]


def test_a_failing_package_leaves_nothing_behind(toy_plugin, tmp_path, monkeypatch):
    arch = plugins.get_architecture("toy")
    original = arch.layout_plan

    def broken_plan(layout, **kwargs):
        plan = original(layout, **kwargs)

        def fail(weights):
            raise RuntimeError("boom")

        plan.packages[1] = LayoutPackage("Stock", "models/Stock.mlpackage", fail, fail)
        return plan

    monkeypatch.setattr(arch, "layout_plan", broken_plan)
    monkeypatch.setattr(plugins, "get_architecture", lambda name: arch)
    with pytest.raises(RuntimeError, match="boom"):
        _export(tmp_path, "bundle")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_refused_before_any_weights_load(toy_plugin, tmp_path):
    (tmp_path / "toy-small").mkdir()
    arch = plugins.get_architecture("toy")
    with pytest.raises(OutputError, match="already exists"):
        plan_layout(arch, "bundle", size="small", name=None, checkpoint=None, output_dir=tmp_path)
    plan_layout(
        arch, "bundle", size="small", name=None, checkpoint=None, output_dir=tmp_path, force=True
    )


def test_force_replaces_a_layout_folder(toy_plugin, tmp_path):
    _export(tmp_path, "bundle")
    (tmp_path / "toy-small" / "stale.txt").write_text("old")
    _export(tmp_path, "bundle", force=True)
    assert not (tmp_path / "toy-small" / "stale.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_on_a_mac_packages_compile_inside_the_staged_export(toy_plugin, tmp_path, monkeypatch):
    import ane_core.layout_export as layout_export

    compiled = []

    def fake_compile(package: Path, output_dir: Path) -> Path:
        assert TEMP_PREFIX in str(package)  # still staged: published with everything else
        out = output_dir / (package.stem + ".mlmodelc")
        out.mkdir()
        compiled.append(package.name)
        return out

    monkeypatch.setattr(layout_export, "compile_package", fake_compile)
    flat = _export(tmp_path, "flat", compile_models=True)
    assert flat.outputs == [
        tmp_path / "toy-small-flat.mlpackage",
        tmp_path / "toy-small-flat.mlmodelc",
    ]
    assert flat.compiled == [tmp_path / "toy-small-flat.mlmodelc"] and not flat.compile_commands
    bundle = _export(tmp_path, "bundle", compile_models=True)
    assert (tmp_path / "toy-small" / "models" / "Stock.mlmodelc").is_dir()
    assert len(bundle.compiled) == 2 and compiled[-2:] == ["Ane.mlpackage", "Stock.mlpackage"]


def test_layout_precisions_default_and_refusal(toy_plugin):
    arch = plugins.get_architecture("toy")
    bundle, flat = find_layout(arch, "bundle"), find_layout(arch, "flat")
    assert layout_precisions(bundle, []) == [Precision.FP16]
    assert layout_precisions(flat, ["fp32", "fp16"]) == [Precision.FP32, Precision.FP16]
    with pytest.raises(UsageError, match="--layout bundle does not take --precision fp32"):
        layout_precisions(bundle, ["fp32"])
    with pytest.raises(UsageError, match="has no --layout 'nope'. Use one of: native, flat"):
        find_layout(arch, "nope")


def test_layout_parity_compares_every_package_with_its_reference(toy_plugin, tmp_path):
    arch = plugins.get_architecture("toy")
    weights = arch.load_weights("small", None)
    report = check_parity(
        arch,
        weights=weights,
        size="small",
        layout="bundle",
        precisions=[Precision.FP16],
        packages_dir=tmp_path,
    )
    assert report.passed and report.layout == "bundle"
    assert {(r.component, r.model, r.precision) for r in report.rows} == {
        ("Ane", "ane-pytorch", "fp32"),
        ("Stock", "ane-pytorch", "fp32"),
        ("Ane", "package-mil", "fp16"),
        ("Stock", "package-mil", "fp16"),
    }
    assert report.to_json()["layout"] == "bundle"
    assert (tmp_path / "bundle-fp16" / "toy-small" / "Ane.mlpackage").is_dir()


def test_layout_parity_refuses_compression(toy_plugin):
    from ane_core.compress import parse_compression

    arch = plugins.get_architecture("toy")
    with pytest.raises(UsageError, match="--compress checks the native layout only"):
        check_parity(
            arch,
            weights=arch.load_weights("small", None),
            layout="flat",
            compressions=[parse_compression("int8")],
        )


def test_an_architecture_has_only_the_native_layout_by_default():
    class Bare(Architecture):
        name = "bare"

        def sizes(self):
            return ()

        def components(self):
            return ("x",)

        def load_weights(self, size, checkpoint, seed=0):
            return None

        def build(self, component, variant, weights, **options):
            raise NotImplementedError

    bare = Bare()
    assert tuple(bare.layouts()) == (NATIVE,)
    assert bare.describe()["layouts"][0]["name"] == "native"
    with pytest.raises(UsageError, match="bare has no --layout 'app'"):
        bare.layout_plan("app", size=None, name=None, checkpoint=None)


def test_a_plan_of_several_packages_needs_a_root():
    package = LayoutPackage("a", "a.mlpackage", lambda w: None, lambda w: None)
    other = LayoutPackage("b", "b.mlpackage", lambda w: None, lambda w: None)
    with pytest.raises(ValueError, match="no root folder"):
        LayoutPlan("x", [package, other])
    with pytest.raises(ValueError, match="distinct .mlpackage"):
        LayoutPlan("x", [package, package], root="r")
    assert LayoutPlan("x", [package]).outputs == ["a.mlpackage"]
