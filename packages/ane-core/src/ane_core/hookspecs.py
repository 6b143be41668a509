"""The hooks an ane architecture plugin implements.

Why so few: every hook is a promise to plugin authors. One registration hook covers what an
architecture needs (sizes, components, weight loading, stock and ANE builds, parity
reference) because those live on the :class:`~ane_core.architecture.Architecture` object it
registers, where they can grow without changing the hook. Hooks are called with keyword
arguments, so an implementation may accept fewer arguments than the spec (pluggy allows it).

A plugin package declares ``[project.entry-points.ane] NAME = "module"``; the module holds
functions marked with :data:`ane_core.hookimpl`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

from ane_core import PROJECT_NAME

if TYPE_CHECKING:
    from ane_core.architecture import Architecture

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def register_architectures(register: Callable[[Architecture], None]) -> None:
    """Register model architectures by calling ``register(architecture)`` once for each.

    ``architecture`` is an instance of :class:`ane_core.architecture.Architecture`. Its
    ``name`` is what users type (``ane export whisper``); two plugins registering the same
    name is an error reported by ``ane list``, and neither shadows the other silently.
    """
