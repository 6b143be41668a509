"""One module per family of MIL ops; importing this package registers them all.

:func:`supported_ops` lists what the executor implements (every family registered).
"""

from ane_core.executor.ops import (  # noqa: F401
    activation,
    attention,
    constexpr,
    conv,
    elementwise,
    indexing,
    linear,
    normalization,
    reduction,
    shape,
    state,
)
from ane_core.executor.registry import registered_ops


def supported_ops() -> list[str]:
    """Every MIL op type the executor implements, sorted."""
    return registered_ops()
