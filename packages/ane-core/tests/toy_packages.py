"""Toy packages for the package-check tests and fuzzing: one export, paths inside it."""

from __future__ import annotations

from pathlib import Path

from ane_core._coremltools import coremltools
from ane_core.compress import parse_compression
from ane_core.export import export_component
from ane_core.save import save_mlmodel
from ane_core.targets import Precision, parse_target
from ane_core.testing import ToyArchitecture

MODEL = Path("Data/com.apple.CoreML/model.mlmodel")
WEIGHTS = Path("Data/com.apple.CoreML/weights/weight.bin")
MANIFEST = Path("Manifest.json")


def export_toy(directory: Path, compression: str = "none", target: str = "macOS13") -> Path:
    """The toy ANE encoder, FP16, exported to ``directory``: a real package of ~100 KB."""
    arch = ToyArchitecture()
    return export_component(
        arch,
        size="small",
        component="encoder",
        variant="ane",
        weights=arch.load_weights("small", None),
        precision=Precision.FP16,
        target=parse_target(target, precision=Precision.FP16),
        output_dir=directory,
        compression=parse_compression(compression),
    ).path


def save_mil_program(prog, path: Path, target: str = "macOS13") -> Path:
    """Save a MIL builder program untouched (no pass may remove what a test put in)."""
    ct = coremltools()
    mlmodel = ct.convert(
        prog,
        convert_to="mlprogram",
        minimum_deployment_target=getattr(ct.target, target),
        compute_precision=ct.precision.FLOAT16,
        pass_pipeline=ct.PassPipeline.EMPTY,
        skip_model_load=True,
    )
    return save_mlmodel(mlmodel, path, force=False)


def export_state_program(directory: Path, width: int) -> Path:
    """``relu(read_state(cache) + x)``, written back to the state: a stateful package
    (macOS15) whose state is ``(1, width)`` float16."""
    ct = coremltools()
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    specs = [
        mb.TensorSpec((1, width), dtype=types.fp16),
        mb.StateTensorSpec((1, width), dtype=types.fp16),
    ]

    @mb.program(input_specs=specs, opset_version=ct.target.iOS18)
    def prog(x, cache):
        summed = mb.add(x=mb.read_state(input=cache), y=x)
        mb.coreml_update_state(state=cache, value=summed)
        return mb.relu(x=summed)

    return save_mil_program(prog, directory / f"state{width}.mlpackage", "macOS15")
