"""Architecture-specific build options, declared by the plugin and parsed for any CLI.

Why: some choices belong to one architecture only (a text encoder's fixed sequence length,
say) and must reach ``Architecture.build(**options)`` without ane-bench knowing the
architecture. A plugin declares :class:`BuildOption` specs (click-free, so ane-core keeps no
CLI dependency); a command hands the words left over after its own options to
:func:`parse_build_options`, which checks them against those specs and returns the keyword
arguments for ``build`` and ``reference``, every declared option filled in (the default when
not given) so the values can be recorded and reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ane_core.architecture import Architecture
from ane_core.datatypes import BuildOption  # re-exported: plugins import it from here
from ane_core.errors import UsageError

__all__ = ["BuildOption", "parse_build_options"]


def _split(word: str, words: list[str], architecture: str) -> tuple[str, str]:
    """``--name=value`` or ``--name value`` (taking the next word) -> ``(--name, value)``."""
    if "=" in word:
        flag, value = word.split("=", 1)
        return flag, value
    if not words or words[0].startswith("--"):
        raise UsageError(f"{architecture} option {word} needs a value.", f"Write {word} VALUE.")
    return word, words.pop(0)


def parse_build_options(architecture: Architecture, words: Sequence[str]) -> dict[str, Any]:
    """Parse ``--name VALUE`` words against ``architecture.build_options()``.

    Returns ``{name: value}`` for every declared option (defaults for those not given).
    Unknown words, a missing value, a repeated option or a value of the wrong type are one-line
    :class:`UsageError`\\ s that list the options the architecture has.
    """
    specs = {spec.flag: spec for spec in architecture.build_options()}
    known = ", ".join(f"{flag} (default {spec.default})" for flag, spec in specs.items())
    values = {spec.name: spec.default for spec in specs.values()}
    seen: set[str] = set()
    remaining = list(words)
    while remaining:
        word = remaining.pop(0)
        if not word.startswith("--"):
            raise UsageError(f"unexpected argument {word!r}.", _options_hint(architecture, known))
        flag, text = _split(word, remaining, architecture.name)
        spec = specs.get(flag)
        if spec is None:
            raise UsageError(
                f"{architecture.name} has no option {flag}.", _options_hint(architecture, known)
            )
        if flag in seen:
            raise UsageError(f"{flag} is given twice.", "Give it once.")
        seen.add(flag)
        values[spec.name] = spec.convert(architecture.name, text)
    return values


def _options_hint(architecture: Architecture, known: str) -> str:
    if not known:
        return f"{architecture.name} has no build options; see `ane export --help`."
    return f"See `ane export --help`; {architecture.name} build options: {known}."
