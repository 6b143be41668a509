"""Check a PyTorch checkpoint's zip archive against the bytes that are really there.

Why: ``torch.save`` has written a zip archive since PyTorch 1.6, and ``torch.load`` trusts
its directory: each record is read into a buffer of the size the directory claims. A copy
cut short, a Git LFS pointer, or a directory whose sizes were changed would then fail deep
inside torch, or allocate what the file cannot back. So before ``torch.load`` every entry is
checked to lie inside the file, and nothing may expand beyond the file's own length.

Layout facts from PKWARE's APPNOTE.TXT (section 4.3.7, local file header: signature
``PK\\x03\\x04``, name length at byte 26, extra-field length at byte 28, data after the 30
fixed bytes, the name and the extra field); the central directory is read by Python's
``zipfile``, which refuses a directory that claims more bytes than precede it. The older
non-zip ("legacy") format is refused: it allocates every storage at its pickled size
before reading a byte of it (``torch.serialization._legacy_load``).
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

from ane_core.errors import AneError, WeightsError
from ane_core.file_checks.lfs import refuse_lfs_pointer

ZIP_MAGIC = b"PK\x03\x04"
_LOCAL_HEADER = 30


def _damaged(path: Path, what: str, error: type[AneError]) -> AneError:
    return error(f"checkpoint {path} is damaged ({what}).", "Copy or download it again.")


def check_torch_zip(path: str | Path, error: type[AneError] = WeightsError) -> None:
    """Refuse ``path`` unless it is a whole PyTorch zip archive: not empty, not a Git LFS
    pointer, not cut short, every entry inside the file and no larger than it."""
    path = Path(path)
    refuse_lfs_pointer(path, error)
    size = os.path.getsize(path)
    if size == 0:
        raise error(f"checkpoint {path} is empty.", "Copy or download it again.")
    with open(path, "rb") as handle:
        head = handle.read(4)
        if head != ZIP_MAGIC:
            raise error(
                f"checkpoint {path} is not a PyTorch checkpoint (a zip archive written by "
                "torch.save; older non-zip files are not read).",
                "Pass a checkpoint saved by PyTorch 1.6 or later, or re-save it with torch.save.",
            )
        try:
            with zipfile.ZipFile(handle) as archive:
                entries = archive.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
            raise error(
                f"checkpoint {path} is truncated or damaged (its zip directory cannot be read).",
                "Copy or download it again.",
            ) from None
        if not entries:
            raise _damaged(path, "its zip archive is empty", error)
        for entry in entries:
            if entry.file_size > size:
                raise _damaged(
                    path,
                    f"{entry.filename} claims {entry.file_size:,} bytes, more than the file",
                    error,
                )
            handle.seek(entry.header_offset)
            local = handle.read(_LOCAL_HEADER)
            if len(local) < _LOCAL_HEADER or local[:4] != ZIP_MAGIC:
                raise _damaged(path, f"{entry.filename} has no local header", error)
            name_length, extra_length = struct.unpack_from("<HH", local, 26)
            data_end = entry.header_offset + _LOCAL_HEADER + name_length + extra_length
            if data_end + entry.compress_size > size:
                raise error(
                    f"checkpoint {path} is truncated ({entry.filename} ends past the file).",
                    "Copy or download it again.",
                )
