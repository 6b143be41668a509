"""Run one measurement job in a fresh Python process and relay its progress events.

Why a child per job: the peak resident memory of an export must be the export's own, not
that of everything the benchmark did before it (Python never reliably hands freed memory
back), and a medium-size job must give all its memory back before the next one starts.

Why ``python -m`` and not ``multiprocessing``: a spawned multiprocessing child re-imports
the caller's ``__main__``, which breaks any script or notebook that calls the benchmark
without an ``if __name__ == "__main__"`` guard. A plain interpreter that reads its job
(a pickled module-level function and its arguments) from stdin has no such trap.

A job is a module-level function ``job(send, *args) -> dict``; ``send(event)`` passes a
progress event (a tuple) to the parent while the job runs. Events travel as pickles over a
pipe of their own, so whatever the job prints cannot corrupt them.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO

from ane_core.errors import AneError, UsageError

Event = tuple[Any, ...]
Send = Callable[[Event], None]


class ChildFailed(RuntimeError):
    """The job raised or its process died; the message is one line."""


def run_job(
    job: Callable[..., dict[str, Any]], *args: Any, on_event: Callable[[Event], None]
) -> dict[str, Any]:
    """Run ``job(send, *args)`` in a new interpreter and return its result dict.

    ``on_event`` receives every event the job sends. A user error in the child (an
    :class:`~ane_core.errors.AneError`) is raised again here as a ``UsageError`` with the
    same line; anything else, including the child being killed (e.g. out of memory), raises
    :class:`ChildFailed`. The child's own output goes to a temporary log whose last line
    explains a crash.
    """
    payload = pickle.dumps((job, args))
    read_fd, write_fd = os.pipe()
    with tempfile.TemporaryFile() as log:
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(write_fd)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
            )
        finally:
            os.close(write_fd)
        relayed = False
        try:
            with os.fdopen(read_fd, "rb") as events:
                assert process.stdin is not None
                process.stdin.write(payload)
                process.stdin.close()
                outcome = _relay(events, on_event)
                relayed = True
        finally:
            if not relayed:  # Ctrl-C or a broken pipe here: do not leave the child running
                process.kill()
            returncode = process.wait()
        if outcome is None:
            raise ChildFailed(_death(returncode, _last_line(log)))
    kind, value = outcome
    if kind == "result":
        return value
    if kind == "usage":
        raise UsageError(value)
    raise ChildFailed(value)


def _relay(events: BinaryIO, on_event: Callable[[Event], None]) -> tuple[str, Any] | None:
    """Pass events on until the job's outcome arrives; ``None`` if the pipe closes first."""
    while True:
        try:
            event = pickle.load(events)
        except EOFError:
            return None
        if event[0] == "result":
            return ("result", event[1])
        if event[0] == "failed":
            return (event[1], event[2])
        on_event(event)


def _last_line(log: BinaryIO) -> str:
    log.seek(0)
    lines = [line.strip() for line in log.read().decode(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    return lines[-1] if lines else ""


def _death(returncode: int, last_line: str) -> str:
    if returncode < 0:
        hint = " (out of memory?)" if returncode == -9 else ""
        message = f"the measuring process was killed by signal {-returncode}{hint}"
    else:
        message = f"the measuring process exited with code {returncode} before reporting"
    return f"{message}: {last_line}" if last_line else message


def _child_main(fd: int) -> None:
    with os.fdopen(fd, "wb") as channel:

        def send(event: Event) -> None:
            pickle.dump(event, channel)
            channel.flush()

        job, args = pickle.load(sys.stdin.buffer)
        try:
            result = job(send, *args)
        except AneError as error:
            send(("failed", "usage", str(error)))
        except Exception as error:  # any failure is reported; the parent decides what to do
            last = traceback.extract_tb(error.__traceback__)[-1:]
            where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
            send(("failed", "error", f"{type(error).__name__}: {error}{where}"))
        else:
            send(("result", result))


if __name__ == "__main__":
    _child_main(int(sys.argv[1]))
