"""Is a saved ``.mlpackage`` whole? The one check every reader of a package goes through.

* :func:`check_package`: manifest present and its items there, the model spec parses, every
  weight blob the program reads lies inside its file with the type and size the program
  expects, and no file is a Git LFS pointer (header reads only: cheap);
* :func:`verify_digests`: every byte of every file against the SHA-256 ``ane export``
  records in the model's metadata (``ane inspect --verify``);
* :func:`record_digests`: that record, written at export.

Any problem is one :class:`~ane_core.errors.PackageError` that names the file and the fix.
"""

from ane_core.package_check.check import CheckedPackage, WeightFile, check_package
from ane_core.package_check.digests import (
    DIGEST_PREFIX,
    FileDigest,
    record_digests,
    verify_digests,
)

__all__ = [
    "DIGEST_PREFIX",
    "CheckedPackage",
    "FileDigest",
    "WeightFile",
    "check_package",
    "record_digests",
    "verify_digests",
]
