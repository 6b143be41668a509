"""ane bench building blocks that need no export: memory, timing, matrix, weights option."""

from __future__ import annotations

import statistics
import sys

import pytest
from ane_core.errors import UsageError
from ane_core.targets import Precision
from ane_core.testing import ToyArchitecture

from ane_bench.bench.matrix import build_matrix
from ane_bench.bench.memory import PeakTracker, high_water_mark_bytes
from ane_bench.bench.timing import describe_samples, time_call
from ane_bench.bench.weights import weights_by_size

MIB = 2**20


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="platform: per-phase peaks need /proc"
)
def test_phase_peaks_are_each_phases_own_and_the_process_peak_survives_resets():
    tracker = PeakTracker()
    tracker.start_phase()
    block = bytearray(256 * MIB)  # bytearray() zero-fills: every page is touched
    del block
    big = tracker.end_phase()
    tracker.start_phase()
    small = tracker.end_phase()
    assert tracker.per_phase_reset is True
    assert big - small >= 200 * MIB
    assert tracker.overall() >= big > small > 0
    assert high_water_mark_bytes() < big  # the reset really dropped the old peak


def test_time_call_runs_warmup_then_repeat_and_describes_those_samples():
    calls = []
    figures = time_call(lambda: calls.append(1), warmup=2, repeat=5)
    assert len(calls) == 7
    assert len(figures["samples_s"]) == 5 and figures["repeat"] == 5 and figures["warmup"] == 2
    assert figures["median_s"] == statistics.median(figures["samples_s"])
    assert figures["min_s"] == min(figures["samples_s"]) <= figures["max_s"]


def test_describe_samples_quartiles():
    figures = describe_samples([4.0, 1.0, 3.0, 2.0, 5.0])
    assert (figures["median_s"], figures["min_s"], figures["max_s"]) == (3.0, 1.0, 5.0)
    assert figures["iqr_s"] == pytest.approx(2.0)
    assert describe_samples([7.0])["iqr_s"] == 0.0


def test_matrix_defaults_to_every_variant_precision_and_component():
    matrix = build_matrix(ToyArchitecture(), sizes=(), variants=(), precisions=(), components=())
    assert matrix.sizes == ("small",)
    assert matrix.variants == ("ane", "stock")
    assert matrix.precisions == (Precision.FP16, Precision.FP32)
    assert matrix.components == ("encoder",)
    jobs = matrix.export_jobs
    assert [(j.variant, j.precision.value) for j in jobs] == [
        ("ane", "fp16"), ("ane", "fp32"), ("stock", "fp16"), ("stock", "fp32"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        ({"sizes": ("huge",)}, "toy has no size 'huge'"),
        ({"variants": ("fast",)}, "no --arch 'fast'"),
        ({"precisions": ("int3",)}, "unknown precision 'int3'"),
        ({"components": ("decoder",)}, "no component 'decoder'"),
    ],
)
def test_matrix_refuses_unknown_values(axes, message):
    kwargs = {"sizes": (), "variants": (), "precisions": (), "components": (), **axes}
    with pytest.raises(UsageError, match=message):
        build_matrix(ToyArchitecture(), **kwargs)


def test_weights_per_size_with_fallback():
    sizes = ("tiny", "base", "medium")
    known = ("tiny", "base", "medium", "large")
    mapping = weights_by_size(["tiny=/w/tiny", "random"], sizes, known)
    assert mapping == {"tiny": "/w/tiny", "base": "random", "medium": "random"}
    assert weights_by_size([], sizes, known) == dict.fromkeys(sizes)
    assert weights_by_size(["/a=b"], ("tiny",), known) == {"tiny": "/a=b"}  # a path with "="


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (["random", "/other"], "given twice without a size"),
        (["large=random"], "not benchmarked"),
        (["tiny="], "names no source"),
    ],
)
def test_weights_option_errors(entries, message):
    with pytest.raises(UsageError, match=message):
        weights_by_size(entries, ("tiny",), ("tiny", "large"))
