"""Export layer: each Whisper component as an ``ExportableModel`` (module, I/O specs, example
and trace inputs), built from loaded weights. :func:`build_component` builds any of them."""

from whisper_ane.export.components import (
    COMPONENTS,
    LOGITS_OPTION,
    STATEFUL_COMPONENTS,
    build_component,
)

__all__ = ["COMPONENTS", "LOGITS_OPTION", "STATEFUL_COMPONENTS", "build_component"]
