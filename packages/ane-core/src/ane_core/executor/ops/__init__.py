"""One module per family of MIL ops; importing this package registers them all."""

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
