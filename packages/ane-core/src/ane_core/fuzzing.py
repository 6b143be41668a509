"""Property-based tests for readers of files that come from elsewhere (test support).

Why one module: every reader of an outside file (a package, a CTranslate2 ``model.bin``, a
safetensors directory, a ``.pt``) must meet the same damage and keep the same promise, so the
damage, the promise and the test settings are written once and each suite supplies only its
reader and its files:

* damage (:func:`damages`): a file cut at a random length, random bytes of its header
  flipped, or the file replaced by a Git LFS pointer;
* the promise (:func:`check_damaged_read`): the reader either raises one clean
  :class:`~ane_core.errors.AneError` (one line, naming where the files are; "Git LFS
  pointer" for a pointer) or returns something the suite accepts as a correct load; never
  another exception, never a hang, never more memory than the files justify (measured with
  :mod:`tracemalloc`, which sees Python and numpy allocations);
* the settings (:func:`load_profile`): a fast default, and under ``CI=true`` a fixed
  example count, a fixed seed and a deadline; ``ANE_FUZZ_EXAMPLES=N`` runs N examples per
  property instead (a longer hunt for bugs).

Only test code imports this module (it imports hypothesis, a test extra).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ane_core.errors import AneError
from ane_core.file_checks.lfs import lfs_pointer_text  # re-exported: suites import it here
from ane_core.skips import ci_strict

T = TypeVar("T")

CI_PROFILE = "ane-ci"
DEFAULT_PROFILE = "ane-default"
CI_EXAMPLES = 100
"""Examples per property under ``CI=true`` (fixed: derandomized, no example database)."""
DEFAULT_EXAMPLES = 12
"""Examples per property in a local run: enough to catch a regression, fast."""
DEADLINE_MS = 10_000
"""Under ``CI=true`` hypothesis fails an example slower than this (each reads kilobytes to a
few megabytes): the issue's bound on a hang, generous enough for a loaded CI machine."""
HANG_SECONDS = 60
"""An example still running after this is stopped and fails as a hang."""
ALLOWANCE = 64 << 20
"""Memory any read may use beyond what its files justify (interpreter and library overhead)."""


def load_profile() -> str:
    """Register this project's hypothesis profiles and load the one for this run; returns its
    name. Call it from a suite's ``conftest.py``."""
    common: dict[str, Any] = {
        "database": None,  # no .hypothesis folder in the tree; failures print their blob
        "print_blob": True,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    }
    settings.register_profile(
        CI_PROFILE, max_examples=CI_EXAMPLES, derandomize=True, deadline=DEADLINE_MS, **common
    )
    # A local run has no deadline (a loaded machine is no bug); the hang guard still holds.
    settings.register_profile(
        DEFAULT_PROFILE, max_examples=DEFAULT_EXAMPLES, deadline=None, **common
    )
    name = CI_PROFILE if ci_strict() else DEFAULT_PROFILE
    hunt = os.environ.get("ANE_FUZZ_EXAMPLES", "").strip()
    if hunt.isdigit() and int(hunt) > 0:
        name = f"{name}-{hunt}"
        settings.register_profile(
            name, settings.get_profile(name.rsplit("-", 1)[0]), max_examples=int(hunt)
        )
    settings.load_profile(name)
    return name


@dataclass(frozen=True)
class Damage:
    """One damage to one file of a subject (a folder of files a reader opens)."""

    kind: str
    """``truncate``, ``flip`` or ``lfs``."""
    file: str
    """Path of the damaged file, relative to the subject's folder."""
    length: int = 0
    """``truncate``: bytes kept."""
    flips: tuple[tuple[int, int], ...] = ()
    """``flip``: (byte offset, xor mask) pairs."""
    pointer: bytes = b""
    """``lfs``: the pointer written in place of the file."""

    def apply(self, root: Path) -> None:
        path = root / self.file
        if self.kind == "truncate":
            with open(path, "r+b") as handle:
                handle.truncate(self.length)
        elif self.kind == "flip":
            data = bytearray(path.read_bytes())
            for offset, mask in self.flips:
                data[offset] ^= mask
            path.write_bytes(bytes(data))
        elif self.kind == "lfs":
            path.write_bytes(self.pointer)
        else:
            raise ValueError(f"unknown damage {self.kind!r}")


@contextlib.contextmanager
def damaged_copy(folder: Path, damage: Damage) -> Iterator[Path]:
    """A copy of ``folder`` with ``damage`` applied, in a temporary directory removed
    afterwards: each example damages its own copy and the original stays whole."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(shutil.copytree(folder, Path(scratch) / folder.name))
        damage.apply(copy)
        yield copy


def damages(
    sizes: Mapping[str, int], headers: Mapping[str, Sequence[tuple[int, int]]]
) -> st.SearchStrategy[Damage]:
    """Damage to one of the files ``sizes`` names (relative path -> bytes): a cut at any
    length below its size, 1-4 byte flips inside the ``[start, end)`` ranges ``headers``
    gives for it (the bytes a reader trusts: headers, indexes, the spec), or an LFS pointer
    in its place (stating the real size, as git-lfs writes it)."""
    files = sorted(sizes)

    def truncate(name: str) -> st.SearchStrategy[Damage]:
        return st.integers(0, sizes[name] - 1).map(lambda n: Damage("truncate", name, length=n))

    def flip(name: str) -> st.SearchStrategy[Damage]:
        positions = st.sampled_from(list(headers[name])).flatmap(
            lambda span: st.integers(span[0], span[1] - 1)
        )
        pairs = st.lists(  # distinct offsets: two flips of one byte could cancel out
            st.tuples(positions, st.integers(1, 255)),
            min_size=1,
            max_size=4,
            unique_by=lambda pair: pair[0],
        )
        return pairs.map(lambda p: Damage("flip", name, flips=tuple(p)))

    def lfs(name: str) -> st.SearchStrategy[Damage]:
        oid = st.binary(min_size=32, max_size=32).map(bytes.hex)
        return oid.map(lambda h: Damage("lfs", name, pointer=lfs_pointer_text(h, sizes[name])))

    flippable = [name for name in files if headers.get(name)]
    kinds = [
        st.sampled_from(files).flatmap(truncate),
        st.sampled_from(files).flatmap(lfs),
    ]
    if flippable:
        kinds.append(st.sampled_from(flippable).flatmap(flip))
    return st.one_of(kinds)


class Hang(Exception):
    """A read ran past :data:`HANG_SECONDS`."""


@contextlib.contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    def expire(*_: object) -> None:
        raise Hang(f"the read did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def traced_peak(read: Callable[[], T]) -> tuple[T | BaseException, int]:
    """Run ``read`` under :mod:`tracemalloc`: its result (or the exception it raised) and the
    peak bytes it had allocated at once."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        outcome: T | BaseException = read()
    except Exception as error:  # judged by the caller: only AneError passes
        outcome = error
    finally:
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
    return outcome, peak


def check_damaged_read(
    read: Callable[[], T],
    damage: Damage,
    root: Path,
    *,
    file_bytes: int,
    accept: Callable[[T], None],
) -> AneError | T:
    """Run ``read`` on the damaged subject under ``root`` and assert the promise (see the
    module docstring); ``accept`` asserts that a load that succeeded is correct.

    ``file_bytes``: the subject's size before damage; the read may allocate at most 4 times
    that plus :data:`ALLOWANCE` (a float32 copy of float16 weights is twice the file).
    """
    with _time_limit(HANG_SECONDS):
        outcome, peak = traced_peak(read)
    budget = 4 * file_bytes + ALLOWANCE
    assert peak <= budget, f"{damage}: allocated {peak:,} bytes, more than the {budget:,} allowed"
    if isinstance(outcome, AneError):
        message = str(outcome)
        assert "\n" not in message, message
        assert str(root) in message, f"the message does not say where: {message}"
        if damage.kind == "lfs":
            assert "Git LFS pointer" in message, message
        return outcome
    if isinstance(outcome, BaseException):
        raise AssertionError(
            f"{damage}: {type(outcome).__name__} escaped instead of an AneError: {outcome}"
        ) from outcome
    assert damage.kind != "lfs", f"{damage}: a Git LFS pointer loaded as if it were the file"
    accept(outcome)
    return outcome
