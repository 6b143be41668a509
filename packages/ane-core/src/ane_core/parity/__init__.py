"""Does an exported package compute what the PyTorch model computes? Parity as a library.

For each component, on the same named inputs (``Architecture.parity_inputs``), run the
reference (``Architecture.reference``, FP32), the ANE PyTorch module, and the exported ANE
package at each precision (and weight compression) through each backend (the numpy reference
executor anywhere, Core ML on macOS); bring every output to the reference's layout
(``Architecture.to_reference_layout``) and compare: PSNR and max abs error, one
:class:`ParityRow` each, with a floor per precision. With input files, every component and
compression, also compare the task's output per file (``Architecture.task_outputs``, e.g. a
transcript) with the uncompressed package's.

Why in ane-core: this is the project's proof that an export is right, and a Python user (a
CI job, a notebook) should get it without a CLI; ``ane parity`` only parses options and
prints. Nothing here knows a model, and nothing here imports click.

    report = check_parity(arch, weights=weights, size="tiny.en", files=["jfk.flac"])
    report.passed, report.rows, report.to_json()
"""

from ane_core.parity.check import (
    DEFAULT_MIN_PSNR,
    ParityReport,
    check_parity,
    check_settings,
    default_backends,
)
from ane_core.parity.component import component_parity
from ane_core.parity.layout import layout_parity
from ane_core.parity.rows import ParityRow, compare, module_outputs, package_feed, package_outputs
from ane_core.parity.task_outputs import TaskOutputRow, compare_task_outputs

__all__ = [
    "DEFAULT_MIN_PSNR",
    "ParityReport",
    "ParityRow",
    "TaskOutputRow",
    "check_parity",
    "check_settings",
    "compare",
    "compare_task_outputs",
    "component_parity",
    "default_backends",
    "layout_parity",
    "module_outputs",
    "package_feed",
    "package_outputs",
]
