"""SHA-256 of every file a package carries besides its spec, recorded at export and checked
by ``ane inspect --verify``.

Why: the headers :func:`~ane_core.package_check.check.check_package` reads show a file cut
short or replaced, not one whose bytes changed in place (a bad disk, a bad copy, an edit).
A download is checked against a digest for exactly that reason, so ``ane export`` records
one per file in the model's own metadata (``ane.sha256.<path in the package>``, e.g.
``ane.sha256.Data/com.apple.CoreML/weights/weight.bin``) and ``--verify`` reads every byte
and compares. The model spec cannot hold its own digest, so it is not recorded: a changed
spec either fails to parse or no longer matches the headers it points into. Packages written
before this, or by other tools, have no record: ``--verify`` then reports each digest and
says there is nothing to compare against.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ane_core.errors import PackageError
from ane_core.file_checks import file_sha256
from ane_core.package_check.check import CheckedPackage, check_package
from ane_core.package_check.manifest import COPY_AGAIN, DATA_DIR

DIGEST_PREFIX = "ane.sha256."
"""Metadata key prefix of a recorded digest; the rest of the key is the file's path."""


def digested_files(package: Path, model_path: Path) -> list[str]:
    """Paths (relative to the package, ``/``-separated) of every file under ``Data`` but the
    model spec at ``model_path``: weight files and the items ``ane export`` ships."""
    data = package / DATA_DIR
    files = []
    for root, _, names in os.walk(data):
        for name in names:
            path = Path(root, name)
            if path != model_path and path.is_file():
                files.append(path.relative_to(package).as_posix())
    return sorted(files)


def record_digests(package: str | Path) -> dict[str, str]:
    """Write the digest of each of ``package``'s files into its model's metadata.

    Call it on a staged package as the last write (the files must not change afterwards);
    it rewrites only the model spec. Returns the metadata it added.
    """
    checked = check_package(package)
    spec = checked.spec
    recorded = {
        DIGEST_PREFIX + rel: file_sha256(checked.path / rel)
        for rel in digested_files(checked.path, checked.model_path)
    }
    for key, value in recorded.items():
        spec.description.metadata.userDefined[key] = value
    checked.model_path.write_bytes(spec.SerializeToString())
    return recorded


@dataclass(frozen=True)
class FileDigest:
    """A file's digest as read now beside the one recorded at export, if any."""

    path: str
    bytes: int
    sha256: str
    recorded: str | None

    @property
    def status(self) -> str:
        """``matches``, ``differs`` or ``not recorded``."""
        if self.recorded is None:
            return "not recorded"
        return "matches" if self.recorded == self.sha256 else "differs"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "recorded_sha256": self.recorded,
            "status": self.status,
        }


def verify_digests(checked: CheckedPackage) -> list[FileDigest]:
    """Read every file of the package and compare it with its recorded digest.

    A recorded file that is missing, or one whose bytes differ, is a
    :class:`~ane_core.errors.PackageError` naming it (as a download with a wrong checksum
    is refused); files without a record are reported with ``recorded=None``.
    """
    user = checked.spec.description.metadata.userDefined
    recorded = {k[len(DIGEST_PREFIX) :]: v for k, v in user.items() if k.startswith(DIGEST_PREFIX)}
    present = digested_files(checked.path, checked.model_path)
    for rel in sorted(set(recorded) - set(present)):
        raise PackageError(f"{checked.path} lacks {rel}, whose digest it records.", COPY_AGAIN)
    digests = []
    for rel in present:
        path = checked.path / rel
        digest = FileDigest(rel, path.stat().st_size, file_sha256(path), recorded.get(rel))
        if digest.status == "differs":
            raise PackageError(
                f"{path} has sha256 {digest.sha256[:16]}... but the package records "
                f"{digest.recorded[:16]}...: its bytes changed after export.",
                COPY_AGAIN,
            )
        digests.append(digest)
    return digests
