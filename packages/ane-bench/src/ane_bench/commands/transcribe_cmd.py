"""``ane transcribe ARCH AUDIO...``: speech to text with a plugin's decoding loop.

The command knows no model: an architecture that can transcribe offers
``transcriber(weights, backend=..., precision=...)`` (returning a function of one audio
path) and ``transcribe_backends``; any other architecture gets a one-line error.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from ane_core.architecture import NATIVE_LAYOUT
from ane_core.errors import UsageError
from ane_core.layout_export import find_layout
from ane_core.plugins import get_architecture
from ane_core.targets import parse_precision

from ane_bench.weights_option import weights_options


@click.command("transcribe")
@click.argument("architecture")
@click.argument("audio", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--size", help="Model size, e.g. tiny.en (see `ane list`).")
@weights_options
@click.option(
    "--backend",
    default="torch-ane",
    show_default=True,
    help="What runs the model: torch-ane (ANE modules) or torch-stock (original modules).",
)
@click.option(
    "--precision", default=None, help="fp16 or fp32 (default fp32; a --layout's own default)."
)
@click.option("--language", default=None, help="Spoken language code; default: detect.")
@click.option(
    "--task",
    type=click.Choice(["transcribe", "translate"]),
    default="transcribe",
    show_default=True,
)
@click.option("--without-timestamps", is_flag=True, help="Decode text tokens only.")
@click.option("--json", "as_json", is_flag=True, help="Print text, segments and timings as JSON.")
@click.option(
    "--layout",
    default=NATIVE_LAYOUT,
    show_default=True,
    help="Decode with an app layout's exported packages, driven as the app does (`ane list`).",
)
def transcribe_command(
    architecture,
    audio,
    size,
    checkpoint,
    seed,
    backend,
    precision,
    language,
    task,
    without_timestamps,
    as_json,
    layout,
) -> None:
    """Transcribe AUDIO files with ARCHITECTURE (greedy decoding, temperature 0)."""
    arch = get_architecture(architecture)
    make_transcriber = getattr(arch, "transcriber", None)
    if make_transcriber is None:
        raise UsageError(
            f"architecture {arch.name} cannot transcribe.",
            "Run `ane list` to see the installed architectures.",
        )
    backends = tuple(getattr(arch, "transcribe_backends", ()))
    if backend not in backends:
        raise UsageError(f"unknown backend {backend!r}.", f"Use one of: {', '.join(backends)}.")
    chosen = find_layout(arch, layout)
    native = chosen.name == NATIVE_LAYOUT
    prec = parse_precision(precision or ("fp32" if native else chosen.default_precision))
    arch.check_input_files(audio)
    weights = arch.load_weights(size or arch.default_size(), checkpoint, seed=seed)
    run = make_transcriber(
        weights, backend=backend, precision=prec, **({} if native else {"layout": layout})
    )
    results = [
        run(path, language=language, task=task, without_timestamps=without_timestamps)
        for path in audio
    ]
    if as_json:
        report = {"backend": backend, "precision": prec.value, "files": results}
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    for result in results:
        prefix = f"{result['audio']}: " if len(results) > 1 else ""
        click.echo(f"{prefix}{result['text']}")
