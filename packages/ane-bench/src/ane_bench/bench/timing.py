"""Time a zero-argument call: warm-up runs first, then ``repeat`` timed runs.

Why median and spread, not a mean: on a shared 2-core machine a few runs are slowed by
other work; the median resists them and min/max/IQR show how noisy the figure is.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def describe_samples(samples: list[float]) -> dict[str, Any]:
    """Median, min, max and interquartile range of measured seconds (all from ``samples``)."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {
        "samples_s": samples,
        "median_s": statistics.median(ordered),
        "min_s": ordered[0],
        "max_s": ordered[-1],
        "iqr_s": q3 - q1,
    }


def time_call(call: Callable[[], Any], *, warmup: int, repeat: int) -> dict[str, Any]:
    """Run ``call`` ``warmup`` times untimed, then ``repeat`` times timed; describe the times."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return {"warmup": warmup, "repeat": repeat, **describe_samples(samples)}
