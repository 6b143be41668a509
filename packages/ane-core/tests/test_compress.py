"""Weight compression on the toy architecture: ops in the saved program, size, and accuracy.

Accuracy is measured by running the saved, compressed package with the numpy reference
executor against the PyTorch module, so a compression that wrote the wrong weights (or
that the executor decoded wrongly) fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ane_core.compress import (
    COMPRESSIONS,
    NO_COMPRESSION,
    PALETTE_GROUP_SIZE,
    compress_model,
    palette_granularity,
    parse_compression,
    supports_grouped_palettes,
)
from ane_core.errors import UsageError
from ane_core.executor import run_package
from ane_core.export import export_component, package_name
from ane_core.inspect import inspect_package
from ane_core.metrics import psnr
from ane_core.mil import load_spec, op_counts
from ane_core.targets import Precision, parse_target
from ane_core.testing import ToyArchitecture

COMPRESSED_OPS = {
    "constexpr_affine_dequantize",
    "constexpr_blockwise_shift_scale",
    "constexpr_lut_to_dense",
}
TOY_WEIGHT_TENSORS = 10  # 2 blocks x (q, k, v, out, fc), each 64 x 64: above the threshold


def _bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _export(out: Path, compression: str, target: str = "macOS13"):
    arch = ToyArchitecture()
    weights = arch.load_weights("small", None)
    return export_component(
        arch,
        size="small",
        component="encoder",
        variant="ane",
        weights=weights,
        precision=Precision.FP16,
        target=parse_target(target, precision=Precision.FP16),
        output_dir=out / target,
        compression=parse_compression(compression),
    )


@pytest.fixture(scope="module")
def toy_reference():
    """The PyTorch output and the uncompressed FP16 package, shared by every case."""
    arch = ToyArchitecture()
    model = arch.build("encoder", "ane", arch.load_weights("small", None))
    with torch.no_grad():
        reference = model.module(*model.example_inputs).numpy()
    return model.example_inputs[0].numpy(), reference


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``exported(compression, target)``: each toy export made once per module."""
    out = tmp_path_factory.mktemp("compress")
    cache = {}

    def get(compression: str, target: str = "macOS13"):
        if (compression, target) not in cache:
            cache[compression, target] = _export(out, compression, target)
        return cache[compression, target]

    return get


@pytest.fixture(scope="module")
def uncompressed_bytes(exported) -> int:
    result = exported("none")
    assert not COMPRESSED_OPS & set(op_counts(result.path))
    return _bytes(result.path)


def test_compression_names_and_targets():
    assert parse_compression(None) is NO_COMPRESSION
    assert parse_compression("PALETTIZE4").nbits == 4
    with pytest.raises(UsageError, match="unknown --compress 'int4'"):
        parse_compression("int4")
    assert [supports_grouped_palettes(t) for t in ("macOS13", "macOS14", "macOS15", "macOS26")] == [
        False,
        False,
        True,
        True,
    ]
    assert supports_grouped_palettes("iOS18") and not supports_grouped_palettes("iOS17")
    assert palette_granularity("iOS16") == "per_tensor"
    suffixes = [c.suffix for c in COMPRESSIONS.values()]
    assert len(set(suffixes)) == len(suffixes)
    name = package_name("w", "tiny", "encoder", "ane", Precision.FP16, COMPRESSIONS["palettize4"])
    assert name == "w-tiny-encoder-ane-fp16-pal4.mlpackage"


@pytest.mark.parametrize(
    ("compression", "target", "op", "floor", "granularity"),
    [
        ("int8", "macOS13", "constexpr_affine_dequantize", 40.0, "per_channel"),
        ("int8-tensor", "macOS13", "constexpr_affine_dequantize", 40.0, "per_tensor"),
        ("palettize8", "macOS13", "constexpr_lut_to_dense", 40.0, "per_tensor"),
        ("palettize6", "macOS13", "constexpr_lut_to_dense", 32.0, "per_tensor"),
        ("palettize4", "macOS13", "constexpr_lut_to_dense", 22.0, "per_tensor"),
        ("int8", "macOS15", "constexpr_blockwise_shift_scale", 40.0, "per_channel"),
        (
            "palettize4",
            "macOS15",
            "constexpr_lut_to_dense",
            22.0,
            f"per_grouped_channel/{PALETTE_GROUP_SIZE}",
        ),
    ],
)
def test_compressed_export(
    exported, toy_reference, uncompressed_bytes, compression, target, op, floor, granularity
):
    result = exported(compression, target)
    spec = COMPRESSIONS[compression]
    assert result.path.name == f"toy-small-encoder-ane-fp16{spec.suffix}.mlpackage"
    assert result.compression == compression
    assert "compress" in result.timings
    ops = op_counts(result.path)
    assert ops[op] == TOY_WEIGHT_TENSORS
    assert not (COMPRESSED_OPS - {op}) & set(ops)
    assert ops["cast"] == 0
    meta = dict(load_spec(result.path).description.metadata.userDefined)
    assert meta["ane.compression"].startswith(f"{compression} (")
    assert granularity in meta["ane.compression"]
    assert meta["ane.architecture"] == "toy"  # metadata survived compression
    assert _bytes(result.path) < uncompressed_bytes
    x, reference = toy_reference
    output = run_package(result.path, {"x": x})["y"]
    assert psnr(reference, output) >= floor


def test_fewer_bits_make_smaller_and_less_accurate_packages(exported, toy_reference):
    results = [exported(f"palettize{n}") for n in (8, 6, 4)]
    sizes = [_bytes(r.path) for r in results]
    assert sizes[0] > sizes[1] > sizes[2]
    x, reference = toy_reference
    errors = [psnr(reference, run_package(r.path, {"x": x})["y"]) for r in results]
    assert errors[0] > errors[1] > errors[2]


def test_grouped_palettes_fall_back_per_tensor_where_the_group_does_not_divide():
    """A 50-channel weight cannot be split in groups of 16 (a Whisper vocabulary cannot
    either): it must still be palettized, one palette for the tensor."""
    import coremltools as ct

    linear = torch.nn.Linear(64, 50).eval()
    traced = torch.jit.trace(linear, torch.randn(1, 64))
    mlmodel = ct.convert(
        traced,
        inputs=[ct.TensorType(name="x", shape=(1, 64))],
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.macOS15,
    )
    compressed = compress_model(mlmodel, COMPRESSIONS["palettize4"], "macOS15")
    assert op_counts(compressed)["constexpr_lut_to_dense"] == 1


def test_uncompressed_export_records_none(exported):
    result = exported("none")
    assert result.path.name == "toy-small-encoder-ane-fp16.mlpackage"
    assert "compress" not in result.timings
    meta = dict(load_spec(result.path).description.metadata.userDefined)
    assert meta["ane.compression"] == "none"


@pytest.mark.parametrize(
    ("compression", "target", "nbits"),
    [
        ("int8", "macOS13", 8),
        ("int8", "macOS15", 8),
        ("palettize6", "macOS13", 6),
        ("palettize4", "macOS13", 4),
        ("palettize4", "macOS15", 4),
    ],
)
def test_inspect_counts_the_stored_bytes_of_compressed_weights(
    exported, compression, target, nbits
):
    """iOS16 constexpr ops keep their data in attributes, iOS18 ones in input values: both
    must count, at nbits per weight plus a few scales or palette entries, not 0 bytes."""
    dense = TOY_WEIGHT_TENSORS * 64 * 64
    uncompressed = inspect_package(exported("none", target).path, with_compute_plan=False).cost
    small_consts = uncompressed.weight_bytes - dense * 2  # biases, norms: left uncompressed
    assert small_consts >= 0
    cost = inspect_package(exported(compression, target).path, with_compute_plan=False).cost
    stored = cost.weight_bytes - small_consts
    assert dense * nbits // 8 <= stored <= dense * nbits // 8 * 1.1
    assert cost.weight_file_bytes <= cost.weight_bytes <= cost.weight_file_on_disk
