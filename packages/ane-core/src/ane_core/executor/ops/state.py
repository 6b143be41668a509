"""Stateful-program ops (iOS18 ``states.py``, coreml dialect ``coreml_update_state``).

A state variable arrives as the caller's buffer (a numpy array in the state's declared
dtype); writes go into it in place, so the caller sees them after the call, like Core ML's
``MLState``.
"""

from __future__ import annotations

import numpy as np

from ane_core.executor.registry import register


@register("read_state")
def read_state(input):  # noqa: A002  (MIL's input name)
    """A snapshot of the state: later writes must not change values already read."""
    return np.array(input, copy=True)


@register("coreml_update_state")
def coreml_update_state(state, value):
    """Write ``value`` into ``state`` and return it."""
    np.copyto(state, np.asarray(value), casting="unsafe")
    return value
