"""The measuring child process: results, events, and every way it can fail."""

from __future__ import annotations

import os
from pathlib import Path

import bench_jobs
import pytest
from ane_core.errors import UsageError

from ane_bench.bench.child import ChildFailed, run_job


@pytest.fixture(autouse=True)
def importable_jobs(monkeypatch):
    """The child imports the jobs by module name, so it needs this directory on its path."""
    here = str(Path(__file__).parent)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    )


def test_result_and_events_come_back_from_another_process():
    events = []
    result = run_job(bench_jobs.echo_job, [1, "two"], on_event=events.append)
    assert result["value"] == [1, "two"]
    assert result["pid"] != os.getpid()
    assert events == [("phase_started", "echo", "work"), ("phase_finished", "echo", "work", 0.5)]


def test_user_error_in_child_is_a_one_line_usage_error():
    with pytest.raises(UsageError, match=r"^checkpoint x is damaged\. Pass another one\.$"):
        run_job(bench_jobs.user_error_job, on_event=print)


def test_unexpected_error_names_type_and_place():
    with pytest.raises(ChildFailed, match=r"ZeroDivisionError: boom \(.*bench_jobs\.py:\d+\)"):
        run_job(bench_jobs.crashing_job, on_event=print)


def test_killed_child_is_reported_with_signal_and_last_output_line():
    with pytest.raises(ChildFailed, match=r"signal 9 \(out of memory\?\): about to be killed"):
        run_job(bench_jobs.killed_job, on_event=print)
