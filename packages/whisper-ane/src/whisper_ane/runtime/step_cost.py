"""Per-token cost of a decoder backend at chosen cache positions.

Why: with a static cache every step computes attention over all ``n_ctx`` slots (masked),
so a step should cost the same at position 1 and at position 400; with a growing cache it
would not. This measures it (best of ``repeats`` steps, so that other load on the machine
inflates the figure as little as possible). Timings are reported, never asserted.

    python -m whisper_ane.runtime.step_cost --size tiny.en --checkpoint DIR [--backend torch-ane]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

import numpy as np
from ane_core.targets import Precision

from whisper_ane.runtime.backends import WhisperBackend, torch_backend
from whisper_ane.runtime.session import DecoderSession
from whisper_ane.weights.source import load_weights


def step_cost_ms(
    backend: WhisperBackend, positions: Sequence[int] = (1, 100, 400), repeats: int = 20
) -> dict[int, float]:
    """Best-of-``repeats`` milliseconds of one decoder step at each position."""
    spec = backend.cross_kv.input_spec("encoder_output")
    features = np.random.default_rng(0).standard_normal(spec.shape).astype(np.float32)
    cross = backend.cross_kv({"encoder_output": features})
    costs = {}
    for position in positions:
        best = float("inf")
        for _ in range(repeats):
            session = DecoderSession(backend.decoder, cross)
            session.position = position  # the slots before it hold zeros: same work
            session.inputs["key_padding_mask"][0, :position] = 0
            start = time.perf_counter()
            session.step(50257)
            best = min(best, time.perf_counter() - start)
        costs[position] = round(1000 * best, 3)
    return costs


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--backend", default="torch-ane")
    parser.add_argument("--precision", default="fp32", choices=["fp16", "fp32"])
    parser.add_argument("--positions", default="1,100,400")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    weights = load_weights(args.size, args.checkpoint)
    backend = torch_backend(args.backend, weights, Precision(args.precision))
    positions = [int(p) for p in args.positions.split(",")]
    costs = step_cost_ms(backend, positions, args.repeats)
    print(json.dumps({"backend": args.backend, "precision": args.precision, "ms": costs}))


if __name__ == "__main__":
    main()
