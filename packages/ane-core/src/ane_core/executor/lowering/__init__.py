"""The reference executor's fast path: every MIL op lowered to PyTorch (see :mod:`.program`).

Importing this package registers every lowering (one module per family, as the numpy ops).
"""

from ane_core.executor.lowering import elementwise, linear, reduction, shape  # noqa: F401
from ane_core.executor.lowering.registry import ACCUMULATING, lowered_ops

__all__ = ["ACCUMULATING", "lowered_ops"]
