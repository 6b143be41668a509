"""``ane bench`` end to end on the toy architecture: every figure traced to a measurement.

One run (both archs, one precision, two timed repeats) is shared by the tests; they check
the structure of results.json and that each number is what measuring the same thing again
gives (package bytes, op counts, inspect summary) or is consistent with its own samples
(medians, sums, peaks). Timings themselves are never asserted.
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
from pathlib import Path

import pytest
import torch
from ane_core import plugins
from ane_core.inspect import inspect_package
from ane_core.mil import op_counts
from ane_core.package_size import bytes_on_disk
from ane_core.testing import ToyArchitecture, ToyPlugin
from click.testing import CliRunner

from ane_bench.bench import NEEDS_MACOS
from ane_bench.bench.coreml import COMPUTE_UNITS
from ane_bench.cli import cli

REPEAT = 2
PHASES = ("build", "trace", "convert", "save")


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    plugins.register_plugin(ToyPlugin(), name="toy-bench")
    out = tmp_path_factory.mktemp("bench")
    args = ["bench", "toy", "--precision", "fp16", "--repeat", str(REPEAT), "-o", str(out)]
    try:
        result = CliRunner().invoke(cli, [*args, "--keep-packages"])
    finally:
        plugins.unregister_plugin("toy-bench")
    assert result.exit_code == 0, result.output
    return out, result.output, json.loads((out / "results.json").read_text())


def test_writes_json_table_and_plots(bench_run):
    out, output, _ = bench_run
    for name in ("results.json", "results.md", "latency.png", "export.png"):
        assert str(out / name) in output
    for name in ("latency.png", "export.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_names_each_step_and_phase(bench_run):
    _, output, _ = bench_run
    assert "[1/3] export toy small ane fp16: encoder" in output
    assert "[2/3] export toy small stock fp16: encoder" in output
    assert "[3/3] PyTorch CPU latency toy small" in output
    for phase in PHASES:
        assert f"toy-small-encoder-ane-fp16.mlpackage: {phase} ..." in output


def test_one_export_row_per_combination_with_measured_phases(bench_run):
    _, _, results = bench_run
    rows = results["exports"]
    assert [(r["variant"], r["precision"], r["component"]) for r in rows] == [
        ("ane", "fp16", "encoder"),
        ("stock", "fp16", "encoder"),
    ]
    for row in rows:
        assert tuple(row["phases_s"]) == PHASES
        assert all(seconds > 0 for seconds in row["phases_s"].values())
        assert row["export_s"] == pytest.approx(sum(row["phases_s"].values()))
        assert set(row["phase_peak_rss_bytes"]) == set(PHASES)


def test_package_figures_are_those_of_the_package_on_disk(bench_run):
    _, _, results = bench_run
    for row in results["exports"]:
        path = Path(row["package"])
        assert path.name == f"toy-small-encoder-{row['variant']}-fp16.mlpackage"
        assert row["package_bytes"] == bytes_on_disk(path) > 0
        assert row["inspect"]["op_counts"] == dict(op_counts(path))
        report = inspect_package(path, with_compute_plan=False)
        assert row["inspect"]["flops"] == report.cost.flops > 0
        assert row["inspect"]["findings"] == len(report.findings)
        assert row["inspect"]["summary"] == report.summary_line()


def test_process_peak_covers_every_phase_peak(bench_run):
    _, _, results = bench_run
    processes = results["export_processes"]
    assert [p["variant"] for p in processes] == ["ane", "stock"]
    rows = {r["variant"]: r for r in results["exports"]}
    for process in processes:
        peaks = rows[process["variant"]]["phase_peak_rss_bytes"]
        assert process["process_peak_rss_bytes"] >= max(peaks.values())
        assert process["process_peak_rss_bytes"] >= process["load_weights_peak_rss_bytes"]
        # torch and coremltools alone take well over 100 MiB: a real process was measured
        assert 100 * 2**20 < process["process_peak_rss_bytes"] < 64 * 2**30
        assert process["process_wall_s"] >= rows[process["variant"]]["export_s"]
        assert process["weights_source"] == "random(seed=0)"


def test_latency_cases_come_from_the_architecture_and_figures_from_samples(bench_run):
    _, _, results = bench_run
    measured = results["pytorch_latency"]
    weights = ToyArchitecture().load_weights("small", None)
    expected = [
        ("encoder", variant, case.name)
        for variant in ("ane", "stock")
        for case in ToyArchitecture().latency_cases("encoder", variant, weights)
    ]
    assert [(m["component"], m["variant"], m["case"]) for m in measured] == expected
    for m in measured:
        assert len(m["samples_s"]) == m["repeat"] == REPEAT
        assert m["median_s"] == statistics.median(m["samples_s"])
        assert m["min_s"] == min(m["samples_s"]) > 0
        assert m["max_s"] == max(m["samples_s"])
        assert m["dtype"] == "float32" and m["device"] == "cpu"


@pytest.mark.skipif(platform.system() == "Darwin", reason="platform: Core ML runs on macOS")
def test_core_ml_figures_say_needs_macos_off_macos(bench_run):
    _, _, results = bench_run
    for row in results["exports"]:
        coreml = row["coreml"]
        assert coreml["available"] is False
        assert coreml["compile_s"] == coreml["ane_op_share"] == NEEDS_MACOS
        assert coreml["load_s"] == dict.fromkeys(COMPUTE_UNITS, NEEDS_MACOS)
        assert coreml["latency"] == dict.fromkeys(COMPUTE_UNITS, NEEDS_MACOS)
    table = (bench_run[0] / "results.md").read_text()
    assert "| small | ane | fp16 | encoder | needs macOS |" in table


def test_environment_names_machine_versions_and_commit(bench_run):
    _, _, results = bench_run
    env = results["environment"]
    assert env["machine"]["cpus"] >= 1 and env["os"]["system"] == platform.system()
    assert env["packages"]["torch"] == torch.__version__
    here = Path(__file__).parent
    inside = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True)
    if inside.returncode != 0:  # installed outside a checkout
        assert env["git"]["commit"] is None
    else:  # HEAD itself, or an ancestor if someone committed since the run
        commit = env["git"]["commit"]
        ancestor = subprocess.run(["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=here)
        assert len(commit) == 40 and ancestor.returncode == 0
    assert results["settings"]["repeat"] == REPEAT and results["errors"] == []


def test_markdown_table_has_a_row_per_export_and_latency_case(bench_run):
    out, _, results = bench_run
    table = (out / "results.md").read_text()
    for row in results["exports"]:
        phases = " | ".join(f"{row['phases_s'][p]:.2f}" for p in PHASES)
        assert f"| small | {row['variant']} | fp16 | none | encoder | {phases} |" in table
    assert "| small | encoder | forward |" in table


def test_packages_are_removed_unless_kept(tmp_path):
    plugins.register_plugin(ToyPlugin(), name="toy-bench-clean")
    try:
        args = ["bench", "toy", "--arch", "stock", "--precision", "fp32", "--repeat", "1"]
        result = CliRunner().invoke(cli, [*args, "--no-latency", "--quiet", "-o", str(tmp_path)])
    finally:
        plugins.unregister_plugin("toy-bench-clean")
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["exports"]) == 1 and results["pytorch_latency"] == []
    assert results["settings"]["latency"] is False
    table = (tmp_path / "results.md").read_text()
    assert "Latency: not measured (--no-latency)." in table
    assert "Not measured: the run had --no-latency." in table
    assert not Path(results["exports"][0]["package"]).exists()
    assert not (tmp_path / "packages").exists()
    assert not (tmp_path / "latency.png").exists() and (tmp_path / "export.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bench", "toy", "--size", "huge"], "toy has no size 'huge'"),
        (["bench", "toy", "--arch", "fast"], "no --arch 'fast'"),
        (["bench", "toy", "--precision", "int3"], "unknown precision 'int3'"),
        (["bench", "toy", "--weights", "small=random", "--weights", "x", "--weights", "y"],
         "given twice"),
        (["bench", "nope"], "unknown architecture 'nope'"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_before_any_work(args, message, tmp_path):
    plugins.register_plugin(ToyPlugin(), name="toy-bench-bad")
    try:
        result = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "out")])
    finally:
        plugins.unregister_plugin("toy-bench-bad")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "out").exists()
