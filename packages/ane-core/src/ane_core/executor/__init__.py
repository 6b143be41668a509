"""Run exported Core ML ML programs off a Mac: a numpy reference executor for MIL.

Core ML cannot predict outside macOS, so nothing else checks that a saved ``.mlpackage``
computes what its PyTorch model computes. This package reads the package's MIL program with
its weights and evaluates it op by op, each op following coremltools' op definitions. fp16
programs round every op output to float16 (see :mod:`ane_core.executor.dtypes` for the exact
rule), so FP16 error shows. An op it does not implement is an :class:`UnsupportedOpError`
naming the op, never a guess. On macOS, ``backend="coreml"`` runs Core ML itself through the
same interface.

    program = load_program("whisper-tiny.en-encoder-ane-fp16.mlpackage")
    outputs = program({"mel": mel})            # dict name -> numpy array
"""

from ane_core.executor.coreml import COMPUTE_UNITS, CoreMLProgram
from ane_core.executor.errors import (
    CoreMLUnavailableError,
    ProgramInputError,
    UnsupportedOpError,
)
from ane_core.executor.interpreter import Program, TensorInfo
from ane_core.executor.lowering.program import LoweredProgram
from ane_core.executor.ops import supported_ops
from ane_core.executor.run import BACKENDS, ENGINES, load_program, run_package

__all__ = [
    "BACKENDS",
    "ENGINES",
    "COMPUTE_UNITS",
    "CoreMLProgram",
    "CoreMLUnavailableError",
    "LoweredProgram",
    "Program",
    "ProgramInputError",
    "TensorInfo",
    "UnsupportedOpError",
    "load_program",
    "run_package",
    "supported_ops",
]
