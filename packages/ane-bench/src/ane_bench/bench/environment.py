"""Where a benchmark ran: machine, OS, Python and package versions, git commit.

Why in every results file: figures from a 2-core Linux VM and from an M-series Mac are not
comparable, and a results file that does not say which code produced it cannot be trusted
later.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

BASE_PACKAGES = ("ane-core", "ane-bench", "torch", "coremltools", "numpy")


def package_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Installed version of each distribution (``None`` if it is not installed)."""
    versions: dict[str, str | None] = {}
    for name in dict.fromkeys(names):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def total_memory_bytes() -> int | None:
    """Physical memory of the machine, where the OS says."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _git(*args: str, cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def git_state(where: Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the checkout ane-bench runs from (``None`` when installed
    from a wheel, outside any git checkout)."""
    where = where or Path(__file__).resolve().parent
    commit = _git("rev-parse", "HEAD", cwd=where)
    if commit is None:
        return {"commit": None, "dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no", cwd=where)
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def describe_environment(extra_packages: Iterable[str] = ()) -> dict[str, Any]:
    """Everything that says where and with what the figures were measured."""
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "arch": platform.machine(),
            "processor": platform.processor() or None,
            "cpus": os.cpu_count(),
            "memory_bytes": total_memory_bytes(),
            "node": platform.node(),
        },
        "os": {
            "system": platform.system(),
            "release": platform.release(),
            "platform": platform.platform(),
            "mac_ver": platform.mac_ver()[0] or None,
        },
        "python": sys.version.split()[0],
        "packages": package_versions([*BASE_PACKAGES, *extra_packages]),
        "git": git_state(),
    }
