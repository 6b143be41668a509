"""How fast each engine of the reference executor runs a package:
``python -m ane_core.executor.speed PACKAGE... [--repeat N] [--json FILE]``.

Why a command and not a test: timings depend on the machine and its load, so they are
reported (median and spread of ``--repeat`` calls after one warm-up, per engine, and the
speed-up of ``torch`` over ``numpy``), never asserted. Inputs are random values of the
declared shapes (integers in ``[0, 100)``, so token ids are valid); a decoder step costs the
same at any position, so they time what real inputs would. ``nox -s executor-speed`` runs it
on the base encoder and the tiny.en decoder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ane_core.errors import AneError
from ane_core.executor.interpreter import Program
from ane_core.executor.run import ENGINES


def random_inputs(program: Program, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of the program's declared shapes and dtypes."""
    rng = np.random.default_rng(seed)
    feed = {}
    for name, info in program.inputs.items():
        shape = [d or 1 for d in info.shape]
        if info.dtype.kind in "iu":
            feed[name] = rng.integers(0, 100, size=shape).astype(info.dtype)
        else:
            feed[name] = (rng.standard_normal(shape) * 0.5).astype(info.dtype)
    return feed


def time_engine(path: Path, engine: str, repeat: int) -> dict[str, Any]:
    """Load time and per-call seconds (median, min, max over ``repeat`` calls) of one engine."""
    start = time.perf_counter()
    program = ENGINES[engine].load(path)
    load_s = time.perf_counter() - start
    feed = random_inputs(program)
    state = program.new_state() if program.states else None
    program(feed, state=state) if state is not None else program(feed)  # warm-up
    calls = []
    for _ in range(repeat):
        start = time.perf_counter()
        program(feed, state=state) if state is not None else program(feed)
        calls.append(time.perf_counter() - start)
    return {
        "engine": engine,
        "load_s": load_s,
        "median_s": statistics.median(calls),
        "min_s": min(calls),
        "max_s": max(calls),
        "repeat": repeat,
    }


def measure(paths: list[Path], repeat: int) -> list[dict[str, Any]]:
    """One row per package: every engine's timings and torch's speed-up over numpy."""
    rows = []
    for path in paths:
        timings = {engine: time_engine(path, engine, repeat) for engine in ENGINES}
        rows.append(
            {
                "package": path.name,
                "engines": timings,
                "speedup": timings["numpy"]["median_s"] / timings["torch"]["median_s"],
            }
        )
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| package | numpy ms per call | torch ms per call | speed-up |",
        "| --- | --- | --- | --- |",
    ]
    for row in rows:
        cells = [
            f"{row['engines'][e]['median_s'] * 1000:.1f} "
            f"({row['engines'][e]['min_s'] * 1000:.1f}-{row['engines'][e]['max_s'] * 1000:.1f})"
            for e in ("numpy", "torch")
        ]
        lines.append(f"| {row['package']} | {cells[0]} | {cells[1]} | {row['speedup']:.1f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("packages", nargs="+", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    try:
        rows = measure(args.packages, max(1, args.repeat))
    except AneError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    print(render(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
