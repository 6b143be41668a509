"""``ane inspect``: what in a saved ML program keeps it off the Apple Neural Engine.

Reads a ``.mlpackage``'s protobuf spec only (no PyTorch, no Core ML runtime), so it gives the
same answer on any OS: I/O, deployment target, metadata, op census, largest tensors, findings
against the rules in :data:`ane_core.inspect.rules.RULES`, FLOPs and weight bytes, and on
macOS 14.4+ the device Core ML plans for each op.
"""

from ane_core.inspect.report import (
    InspectionReport,
    inspect_package,
    report_path,
    write_report,
)
from ane_core.inspect.rules import RULES, RULES_BY_ID, Finding, Rule

__all__ = [
    "RULES",
    "RULES_BY_ID",
    "Finding",
    "InspectionReport",
    "Rule",
    "inspect_package",
    "report_path",
    "write_report",
]
