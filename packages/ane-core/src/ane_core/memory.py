"""Hand memory a finished export freed back to the operating system.

Why: an export frees gigabytes when its component is saved (the PyTorch weights, the MIL
program), but glibc keeps much of it in its heap for reuse, because its ``mmap`` threshold
grows with every large block freed: after medium's encoder, a process still held 1.2 GiB
with no weights loaded, and that floor added to every later component's peak.
``malloc_trim`` returns the free pages (0.6 GiB held instead). Elsewhere (macOS, musl) it
does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from functools import cache


@cache
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> None:
    """Collect garbage, then return free heap pages to the OS where glibc can."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
