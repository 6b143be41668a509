"""Moved to :mod:`whisper_ane.runtime.step_cost`; this old path keeps working for code that
imports it (the layer map is at the top of whisper-ane's README)."""

from whisper_ane.runtime.step_cost import (  # noqa: F401 (re-exported)
    main,
    step_cost_ms,
)

if __name__ == "__main__":  # python -m whisper_ane.step_cost, as documented before the move
    main()
