"""Checks for files that arrive from elsewhere (a hub, a colleague, a CI artifact).

Why one place: every reader of a weight file meets the same damage (a Git LFS pointer
instead of the file, a copy cut short, a header whose sizes are wrong) and must answer with
one line naming the file and the fix, before it allocates anything a header claims. Each
module checks one format against the bytes that are really there:

* :mod:`~ane_core.file_checks.lfs`: Git LFS pointer files, for any format;
* :mod:`~ane_core.file_checks.safetensors_header`: ``.safetensors`` headers;
* :mod:`~ane_core.file_checks.torch_zip`: PyTorch zip checkpoints (``.pt``, ``.bin``);
* :mod:`~ane_core.file_checks.npy`: ``.npy`` arrays;
* :mod:`~ane_core.file_checks.digest`: the SHA-256 that records which bytes were read;
* :mod:`~ane_core.file_checks.checkpoint_files`: tensors read from ``.safetensors``, ``.pt``
  and Hugging Face directories, each file checked by the modules above first.

A package's own files (``Manifest.json``, the model spec, ``weight.bin``) are checked by
:mod:`ane_core.package_check`.
"""

from ane_core.file_checks.checkpoint_files import (
    hf_weight_files,
    load_untrusted_torch,
    read_hf_tensors,
)
from ane_core.file_checks.digest import file_sha256, files_sha256
from ane_core.file_checks.lfs import LfsPointer, read_lfs_pointer, refuse_lfs_pointer
from ane_core.file_checks.npy import check_npy
from ane_core.file_checks.safetensors_header import TensorEntry, check_safetensors
from ane_core.file_checks.torch_zip import check_torch_zip

__all__ = [
    "LfsPointer",
    "TensorEntry",
    "check_npy",
    "check_safetensors",
    "check_torch_zip",
    "file_sha256",
    "files_sha256",
    "hf_weight_files",
    "load_untrusted_torch",
    "read_hf_tensors",
    "read_lfs_pointer",
    "refuse_lfs_pointer",
]
