"""The official checkpoint for a size, through openai-whisper's own cache and download.

Why: people with a network expect ``--size small`` alone to work as ``whisper.load_model``
does, sharing its cache (``$XDG_CACHE_HOME/whisper`` or ``~/.cache/whisper``) so nothing is
fetched twice. ``whisper._download`` checks the SHA-256 that is part of each URL, so a
cached file is used without network only when it is intact; everything that goes wrong
(no network, a corrupt cache that cannot be fetched again) ends as one WeightsError that
names the offline alternatives.
"""

from __future__ import annotations

import os
import urllib.error
import warnings
from pathlib import Path

import whisper
from ane_core.errors import WeightsError

OFFLINE_OPTIONS = (
    "Pass a local source instead: --checkpoint PATH.pt (an openai-whisper checkpoint), "
    "--checkpoint CT2_DIR (a CTranslate2 model directory), --checkpoint HF_DIR (a Hugging Face "
    "Whisper directory), the same paths to whisper_ane.load_model, or --weights random "
    "(shape-only export)."
)


def cache_dir() -> str:
    """openai-whisper's download directory, computed exactly as ``whisper.load_model`` does."""
    default = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(os.getenv("XDG_CACHE_HOME", default), "whisper")


def expected_sha256(size: str) -> str:
    """The SHA-256 openai-whisper expects for ``size`` (the URL's second-to-last segment)."""
    return whisper._MODELS[size].split("/")[-2]


def fetch_checkpoint(size: str, root: str | None = None) -> tuple[Path, str]:
    """Path and SHA-256 of the verified official checkpoint, downloading it if not cached
    (into ``root``, default openai-whisper's cache directory)."""
    url = whisper._MODELS[size]
    root = root or cache_dir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            path = whisper._download(url, root, in_memory=False)
        except (urllib.error.URLError, OSError) as e:
            stale = any("SHA256" in str(w.message) for w in caught)
            reason = getattr(e, "reason", None) or e
            if stale:
                problem = (
                    f"the cached {os.path.join(root, os.path.basename(url))} does not match its SHA-256 "
                    f"and downloading it again from {url} failed ({reason})."
                )
            else:
                problem = (
                    f"cannot download the openai-whisper {size} checkpoint from {url} ({reason})."
                )
            raise WeightsError(problem, OFFLINE_OPTIONS) from None
        except RuntimeError as e:  # checksum of the fresh download wrong, or target not a file
            raise WeightsError(f"openai-whisper {size}: {e}", OFFLINE_OPTIONS) from None
    for w in caught:  # pass on anything but the re-download notice we turned into an error
        if "SHA256" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return Path(path), expected_sha256(size)
