"""``ane transcribe ARCH AUDIO...``: speech to text with a plugin's decoding loop.

The command knows no model: an architecture that can transcribe offers
``transcriber(weights, backend=..., precision=..., build_options=...)`` (returning a function of
one audio path and keyword options) and ``transcribe_backends``; any other architecture gets a
one-line error. The decoding options are openai-whisper's, under whisper CLI's names (each
also spelled with hyphens), with whisper CLI's defaults except ``--beam_size`` (unset: the
static-cache backends have no beam search). They are passed through unchanged; the plugin
gives them their meaning, and writes ``--output-format`` files with whisper's own writers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from ane_core.architecture import NATIVE_LAYOUT
from ane_core.build_options import parse_build_options
from ane_core.errors import UsageError
from ane_core.layout_export import find_layout
from ane_core.plugins import get_architecture
from ane_core.save import check_writable
from ane_core.targets import parse_precision

from ane_bench.weights_option import weights_options

OUTPUT_FORMATS = ("txt", "vtt", "srt", "tsv", "json", "all")


def _optional(kind: Callable[[str], Any]) -> Callable[[Any], Any]:
    """whisper CLI's ``optional_float``/``optional_int``: the word ``None`` means no value."""

    def convert(text: Any) -> Any:
        return None if text is None or text == "None" else kind(text)

    convert.__name__ = f"{kind.__name__} or None"
    return convert


class _Converted(click.ParamType):
    def __init__(self, convert: Callable[[Any], Any]) -> None:
        self.convert_value = convert
        self.name = convert.__name__

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        try:
            return self.convert_value(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not {self.name}", param, ctx)


OPTIONAL_FLOAT = _Converted(_optional(float))
OPTIONAL_INT = _Converted(_optional(int))

# (whisper CLI name, click type, default, help): passed to the transcriber under that name.
DECODING_OPTIONS: tuple[tuple[str, Any, Any, str], ...] = (
    ("temperature", float, 0.0, "Temperature of the first decoding attempt."),
    (
        "temperature_increment_on_fallback",
        OPTIONAL_FLOAT,
        0.2,
        "Temperature step of the fallback when a window fails the thresholds (None: no fallback).",
    ),
    ("best_of", OPTIONAL_INT, 5, "Candidates sampled at a non-zero temperature."),
    ("beam_size", OPTIONAL_INT, None, "Beam search width (not supported by the static cache)."),
    ("patience", OPTIONAL_FLOAT, None, "Beam search patience."),
    ("length_penalty", OPTIONAL_FLOAT, None, "Token length penalty (alpha)."),
    ("suppress_tokens", str, "-1", "Comma-separated token ids to suppress (-1: whisper's set)."),
    ("initial_prompt", str, None, "Text to prompt the first window with."),
    ("carry_initial_prompt", bool, False, "Prepend the initial prompt to every window."),
    ("condition_on_previous_text", bool, True, "Prompt each window with the previous text."),
    ("compression_ratio_threshold", OPTIONAL_FLOAT, 2.4, "Fail a window above this gzip ratio."),
    ("logprob_threshold", OPTIONAL_FLOAT, -1.0, "Fail a window below this mean log probability."),
    ("no_speech_threshold", OPTIONAL_FLOAT, 0.6, "Silence above this no-speech probability."),
    ("prepend_punctuations", str, "\"'“¿([{-", "Merged into the next word's timing."),
    ("append_punctuations", str, "\"'.。,，!！?？:：”)]}、", "Merged into the previous word's."),
    ("highlight_words", bool, False, "Underline each word as spoken in srt and vtt."),
    ("max_line_width", OPTIONAL_INT, None, "Characters per subtitle line (word timestamps)."),
    ("max_line_count", OPTIONAL_INT, None, "Lines per subtitle segment (word timestamps)."),
    ("max_words_per_line", OPTIONAL_INT, None, "Words per subtitle segment (word timestamps)."),
    ("clip_timestamps", str, "0", "Comma-separated start,end,... seconds of clips to process."),
    (
        "hallucination_silence_threshold",
        OPTIONAL_FLOAT,
        None,
        "Skip silences longer than this (seconds) around a likely hallucination (word timestamps).",
    ),
)


LAYOUT_REFUSES = ("word_timestamps", "output_format", *(name for name, *_ in DECODING_OPTIONS))
"""What an app layout's loop (the app's own, run as the app runs it) does not take."""


def _refuse_with_a_layout(ctx: click.Context, layout: str, build_args: tuple[str, ...]) -> None:
    """One line for options a ``--layout`` transcription cannot honour, set by the user."""
    given = [
        "--" + name.replace("_", "-")
        for name in LAYOUT_REFUSES
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    ]
    if build_args:
        given.append("build options")
    if given:
        raise UsageError(
            f"--layout {layout} decodes as the app does (greedy, no word timestamps), so it "
            f"takes no {', '.join(given)}.",
            "Drop them, or use the native layout.",
        )


def decoding_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """One click option per :data:`DECODING_OPTIONS` entry, as ``--name_with_underscores``
    (whisper CLI) and ``--name-with-hyphens``."""
    for name, kind, default, help_text in reversed(DECODING_OPTIONS):
        flags = [f"--{name.replace('_', '-')}"]
        if "_" in name:
            flags.append(f"--{name}")
        command = click.option(
            *flags, name, type=kind, default=default, show_default=True, help=help_text
        )(command)
    return command


@click.command("transcribe", context_settings={"ignore_unknown_options": True})
@click.argument("architecture")
@click.argument("audio", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--size", help="Model size, e.g. tiny.en (see `ane list`).")
@weights_options
@click.option(
    "--backend",
    default="torch-ane",
    show_default=True,
    help="What runs the model: torch-ane / torch-stock (PyTorch modules), mil (the exported "
    "packages in the reference executor), coreml (macOS); -stateful variants.",
)
@click.option(
    "--precision",
    default=None,
    help="fp16 or fp32. Default: fp16 for packages, else fp32 (a --layout's own default).",
)
@click.option("--language", default=None, help="Spoken language code; default: detect.")
@click.option(
    "--task",
    type=click.Choice(["transcribe", "translate"]),
    default="transcribe",
    show_default=True,
)
@click.option("--without-timestamps", is_flag=True, help="Decode text tokens only.")
@click.option(
    "--word-timestamps",
    "--word_timestamps",
    "word_timestamps",
    is_flag=True,
    help="Word-level timestamps (whisper's timing code on the decoder's alignment heads).",
)
@decoding_options
@click.option(
    "--output-format",
    "--output_format",
    "-f",
    "output_format",
    type=click.Choice(OUTPUT_FORMATS),
    default=None,
    help="Also write each transcript with whisper's writer (all: every format).",
)
@click.option(
    "-o",
    "--output-dir",
    "--output_dir",
    "output_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory for --output-format files.",
)
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
    word_timestamps,
    output_format,
    output_dir,
    as_json,
    layout,
    **decoding,
) -> None:
    """Transcribe AUDIO files with ARCHITECTURE.

    Build options of the architecture (`ane list`, e.g. --alignment-heads) may follow the
    audio files.
    """
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
    first_option = next((i for i, word in enumerate(audio) if word.startswith("-")), len(audio))
    files, build_args = audio[:first_option], audio[first_option:]
    if not files:
        raise UsageError(
            f"no audio file before {audio[0]!r}, which `ane transcribe` does not know.",
            "See `ane transcribe --help`; the architecture's build options follow the audio.",
        )
    build_options = parse_build_options(arch, build_args)
    native = chosen.name == NATIVE_LAYOUT
    if native:
        prec = parse_precision(precision) if precision else None
    else:
        _refuse_with_a_layout(click.get_current_context(), layout, build_args)
        prec = parse_precision(precision or chosen.default_precision)
    paths = [Path(word) for word in files]
    arch.check_input_files(paths)
    options = dict(language=language, task=task, without_timestamps=without_timestamps)
    if native:
        options.update(decoding, word_timestamps=word_timestamps)
    check = getattr(arch, "check_transcription", None)
    if check is not None:  # refusals the plugin can tell before any weights load
        check(backend=backend, precision=prec, layout=layout, options=options, **build_options)
    if output_format:
        check_writable(output_dir)
    size = size or arch.default_size()
    weights = arch.load_weights(size, checkpoint, seed=seed)
    if native:
        run = make_transcriber(
            weights, backend=backend, precision=prec, build_options=build_options
        )
        if output_format:
            options.update(output_format=output_format, output_dir=output_dir)
    else:
        run = make_transcriber(weights, backend=backend, precision=prec, layout=layout, size=size)
    results = [run(path, **options) for path in paths]
    if as_json:
        report = {"backend": backend, "precision": results[0].get("precision"), "files": results}
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    for result in results:
        prefix = f"{result['audio']}: " if len(results) > 1 else ""
        click.echo(f"{prefix}{result['text']}")
