"""PyTorch CPU latency of every variant's latency cases, run inside a child process.

Why in a child and per size: the modules of every variant of a medium model do not need to
sit in the benchmark's own memory, and the weights are loaded once for all variants and
components of a size. The cases come from :meth:`Architecture.latency_cases`, so what a
representative inference is stays the plugin's decision.
"""

from __future__ import annotations

import gc
from typing import Any

import torch
from ane_core.architecture import Architecture

from ane_bench.bench.child import Send
from ane_bench.bench.timing import time_call


def latency_job(
    send: Send,
    architecture: Architecture,
    size: str | None,
    variants: tuple[str, ...],
    components: tuple[str, ...],
    checkpoint: str | None,
    seed: int,
    warmup: int,
    repeat: int,
) -> dict[str, Any]:
    """Time every case of every (component, variant) in float32 on the CPU, without autograd."""
    send(("phase_started", "latency", "load weights"))
    weights = architecture.load_weights(size, checkpoint, seed=seed)
    send(("phase_finished", "latency", "load weights", None))
    measurements = []
    with torch.inference_mode():
        for component in components:
            for variant in variants:
                label = f"latency {component} {variant}"
                send(("phase_started", label, "build"))
                cases = architecture.latency_cases(component, variant, weights)
                send(("phase_finished", label, "build", None))
                for case in cases:
                    send(("phase_started", label, case.name))
                    figures = time_call(case.call, warmup=warmup, repeat=repeat)
                    send(("phase_finished", label, case.name, figures["median_s"]))
                    measurements.append(
                        {
                            "component": component,
                            "variant": variant,
                            "case": case.name,
                            "dtype": "float32",
                            "device": "cpu",
                            "torch_threads": torch.get_num_threads(),
                            **figures,
                        }
                    )
                del cases
                gc.collect()
    return {"weights_source": weights.source, "measurements": measurements}
