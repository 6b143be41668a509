"""Core ML figures of an exported package: compile and load time, prediction latency per
compute-units setting, and the share of work Core ML plans on the Neural Engine.

Why guarded by platform and not estimated: Core ML exists only on macOS. Off macOS every
figure is the string :data:`~ane_bench.bench.NEEDS_MACOS`, so a results file can never
carry a number nobody measured.
"""

from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ane_bench.bench import NEEDS_MACOS
from ane_bench.bench.child import Send
from ane_bench.bench.timing import time_call

COMPUTE_UNITS: tuple[str, ...] = ("ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY")
"""``coremltools.ComputeUnit`` members, in the order the table shows them."""

_NUMPY_DTYPES = {"FLOAT16": np.float16, "FLOAT32": np.float32, "INT32": np.int32}


def available() -> bool:
    """Whether Core ML can run here."""
    return platform.system() == "Darwin"


def unavailable_figures() -> dict[str, Any]:
    """The Core ML entry of a row off macOS: every figure says why it is missing."""
    return {
        "available": False,
        "compile_s": NEEDS_MACOS,
        "load_s": {units: NEEDS_MACOS for units in COMPUTE_UNITS},
        "latency": {units: NEEDS_MACOS for units in COMPUTE_UNITS},
        "ane_op_share": NEEDS_MACOS,
        "ane_cost_share": NEEDS_MACOS,
    }


def example_inputs(spec: Any, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of the shapes and dtypes the package declares (values do not matter
    for latency; shapes and dtypes do)."""
    from coremltools.proto import FeatureTypes_pb2

    rng = np.random.default_rng(seed)
    names = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType
    inputs = {}
    for feature in spec.description.input:
        array = feature.type.multiArrayType
        dtype = _NUMPY_DTYPES[names.Name(array.dataType)]
        shape = tuple(int(d) for d in array.shape)
        if np.issubdtype(dtype, np.integer):
            inputs[feature.name] = rng.integers(0, 2, size=shape).astype(dtype)
        else:
            inputs[feature.name] = rng.standard_normal(shape).astype(dtype)
    return inputs


def coreml_job(send: Send, package: str, warmup: int, repeat: int) -> dict[str, Any]:
    """Compile once, then per compute-units setting load and time predictions (macOS only)."""
    if not available():
        return unavailable_figures()
    import coremltools as ct
    from ane_core.inspect.compute_plan import compute_plan
    from ane_core.mil import load_spec

    spec = load_spec(package)
    inputs = example_inputs(spec)
    stateful = len(spec.description.state) > 0
    figures: dict[str, Any] = {"available": True, "load_s": {}, "latency": {}}
    with tempfile.TemporaryDirectory(prefix="ane-bench-") as workdir:
        send(("phase_started", Path(package).name, "coreml compile"))
        start = time.perf_counter()
        compiled = ct.models.utils.compile_model(
            package, destination_path=str(Path(workdir) / "model.mlmodelc")
        )
        figures["compile_s"] = time.perf_counter() - start
        send(("phase_finished", Path(package).name, "coreml compile", figures["compile_s"]))
        for units in COMPUTE_UNITS:
            send(("phase_started", Path(package).name, f"coreml {units}"))
            start = time.perf_counter()
            model = ct.models.CompiledMLModel(compiled, compute_units=ct.ComputeUnit[units])
            figures["load_s"][units] = time.perf_counter() - start
            if stateful:
                state = model.make_state()
                figures["latency"][units] = time_call(
                    lambda m=model, s=state: m.predict(inputs, state=s),
                    warmup=warmup,
                    repeat=repeat,
                )
            else:
                figures["latency"][units] = time_call(
                    lambda m=model: m.predict(inputs), warmup=warmup, repeat=repeat
                )
            send(
                (
                    "phase_finished",
                    Path(package).name,
                    f"coreml {units}",
                    figures["latency"][units]["median_s"],
                )
            )
            del model
    plan = compute_plan(Path(package))
    if plan.get("available"):
        figures["ane_op_share"] = plan["ane_op_share"]
        figures["ane_cost_share"] = plan["ane_cost_share"]
    else:
        figures["ane_op_share"] = figures["ane_cost_share"] = plan.get("reason", NEEDS_MACOS)
    return figures
