"""The app layouts Whisper exports to (``ane export whisper --layout NAME``), by name.

Each layout is one module with a ``LAYOUT`` (:class:`ane_core.architecture.Layout`: name,
description, precisions) and ``plan(name, **build_options)`` returning the
:class:`~ane_core.architecture.LayoutPlan` (packages, their references, folder, files).
Adding a third app is one more module and one line in :data:`LAYOUTS`.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from ane_core.architecture import NATIVE, Layout, LayoutPlan
from ane_core.errors import UsageError

from whisper_ane.export.components import BUILD_OPTIONS
from whisper_ane.export.layouts import whispercpp, whisperkit

LAYOUTS: dict[str, ModuleType] = {
    whispercpp.LAYOUT.name: whispercpp,
    whisperkit.LAYOUT.name: whisperkit,
}
"""Layout name -> its module (see the module docstring)."""


def layouts() -> tuple[Layout, ...]:
    """``native`` and every app layout, for ``ane list`` and ``--layout``."""
    return (NATIVE, *(module.LAYOUT for module in LAYOUTS.values()))


def model_name(size: str | None, name: str | None, checkpoint: str | None) -> str:
    """The model name in file and folder names: ``--name``, else the size (``base.en``),
    else the checkpoint's directory (or file) name, else ``whisper``."""
    if name:
        if Path(name).name != name or name.startswith("."):
            raise UsageError(f"--name {name!r} is not a plain file name.", "Drop the slashes.")
        return name
    if size:
        return size
    if checkpoint and not checkpoint.startswith("random"):
        path = Path(checkpoint).expanduser()
        return path.name if path.is_dir() or not path.suffix else path.stem
    return "whisper"


def layout_plan(
    layout: str,
    *,
    size: str | None,
    name: str | None,
    checkpoint: str | None,
    **options: Any,
) -> LayoutPlan:
    """The plan of ``layout`` for a model called :func:`model_name`; ``options`` are the
    build options. A layout takes only those in its module's ``BUILD_OPTIONS`` (WhisperKit:
    ``alignment_heads``; whisper.cpp: none); any other set away from its default is refused
    in one line, rather than ignored."""
    module = layout_module(layout)
    refuse_unused_options(layout, options)
    used = {key: value for key, value in options.items() if key in module.BUILD_OPTIONS}
    return module.plan(model_name(size, name, checkpoint), named=bool(name), **used)


def layout_module(layout: str) -> ModuleType:
    """The module of app layout ``layout``, or a one-line error naming the layouts."""
    module = LAYOUTS.get(layout)
    if module is None:
        raise UsageError(
            f"whisper has no --layout {layout!r}.",
            f"Use one of: {', '.join(item.name for item in layouts())}.",
        )
    return module


def refuse_unused_options(layout: str, options: dict[str, Any]) -> None:
    """One line for build options set away from their default that ``layout`` does not
    take, with the app's reason where its module names one (``REFUSED_OPTIONS``, e.g.
    WhisperKit's int32 ``input_ids`` for ``--embedding host``), else that the app fixes
    its files. Export and transcription with a layout both check it."""
    module = layout_module(layout)
    defaults = {option.name: option.default for option in BUILD_OPTIONS}
    unused = [
        key
        for key, value in options.items()
        if key not in module.BUILD_OPTIONS and key in defaults and value != defaults[key]
    ]
    if not unused:
        return
    flags = ", ".join("--" + key.replace("_", "-") for key in unused)
    reasons = getattr(module, "REFUSED_OPTIONS", {})
    why = "; ".join(reasons[key] for key in unused if key in reasons)
    raise UsageError(
        f"--layout {layout} takes no {flags} ({why or 'its files are fixed by the app'}).",
        "Drop them, or export the native layout.",
    )
