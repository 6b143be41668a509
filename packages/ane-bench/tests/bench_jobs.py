"""Module-level jobs for test_bench_child.py: the child process imports them by name."""

from __future__ import annotations

import os
import signal

from ane_core.errors import WeightsError


def echo_job(send, value):
    send(("phase_started", "echo", "work"))
    send(("phase_finished", "echo", "work", 0.5))
    return {"value": value, "pid": os.getpid()}


def user_error_job(send):
    raise WeightsError("checkpoint x is damaged.", "Pass another one.")


def crashing_job(send):
    raise ZeroDivisionError("boom")


def killed_job(send):
    print("about to be killed", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
