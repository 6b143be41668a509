"""``ane eval ARCH DATASET``: word error rate of an architecture's variants on real speech.

The command knows no model: an architecture that can be evaluated offers ``evaluate(dataset,
variants=..., output_dir=..., ...)`` returning a report with a plain-text ``table`` and the
``files`` it wrote; any other architecture gets a one-line error. What a dataset or a variant
spelling means is the plugin's business (whisper: ``asterisk:en``, a folder, a TSV;
``mil:fp16:int8``); the command passes them, the build options and the run's size through,
draws the progress bar and prints the table.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from ane_core.build_options import parse_build_options
from ane_core.errors import UsageError
from ane_core.plugins import get_architecture
from ane_core.save import check_writable

from ane_bench.weights_option import weights_options


class ProgressBar:
    """``label [#####.....] done/total, seconds, time left`` on stderr: redrawn in place on a
    terminal, one line per tenth elsewhere (logs of long runs stay short)."""

    WIDTH = 30

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.current: str | None = None
        self.shown = -1
        self.start = time.perf_counter()
        self.first_done: int | None = None

    def __call__(self, label: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if label != self.current:
            self._end_line()
            self.current, self.shown, self.start = label, -1, time.perf_counter()
            self.first_done = None
        tenth = 10 * done // total if total else 10
        if not self.tty and tenth == self.shown and done != total:
            return
        self.shown = tenth
        filled = self.WIDTH * done // total if total else self.WIDTH
        bar = "#" * filled + "." * (self.WIDTH - filled)
        seconds = time.perf_counter() - self.start
        line = f"{label} [{bar}] {done}/{total} {seconds:.0f} s"
        if self.first_done is None:
            self.first_done = done  # what the cache already held: no time spent on it
        fresh = done - self.first_done
        if fresh > 0 and done < total:
            line += f", about {seconds / fresh * (total - done):.0f} s left"
        click.echo(("\r" + line) if self.tty else line, err=True, nl=not self.tty)

    def _end_line(self) -> None:
        if self.enabled and self.tty and self.current is not None:
            click.echo("", err=True)

    def note(self, line: str) -> None:
        """A line of its own (a skipped utterance), between bar redraws."""
        self._end_line()
        self.current = None
        click.echo(line, err=True)

    def close(self) -> None:
        self._end_line()
        self.current = None


@click.command("eval", context_settings={"ignore_unknown_options": True})
@click.argument("architecture")
@click.argument("dataset")
@click.argument("build_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--size", help="Model size, e.g. tiny.en (see `ane list`).")
@weights_options
@click.option(
    "--variant",
    "variants",
    multiple=True,
    metavar="SPEC",
    help="A variant to score beside stock, repeatable; whisper: "
    "BACKEND[:PRECISION[:COMPRESSION[:LAYOUT]]], e.g. mil:fp16:int8, torch-ane:fp32, "
    "mil:fp16:none:whisperkit. Default: the architecture's stock model alone.",
)
@click.option("--language", default=None, help="Spoken language code (asterisk:LANG says it).")
@click.option(
    "--transcripts",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With a DATASET folder: its `NAME: text` transcript file (the Asterisk layout).",
)
@click.option(
    "--min-words", type=click.IntRange(1), default=1, show_default=True, help="Shortest reference."
)
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=None,
    help="Only the first N utterances (dataset order) that pass the filters.",
)
@click.option(
    "--jobs", "-j", type=click.IntRange(1), default=1, show_default=True, help="Processes."
)
@click.option(
    "-o",
    "--output-dir",
    "output_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("eval-results"),
    show_default=True,
    help="Report (eval.json, eval.md, wer.png), per-variant caches and kept packages.",
)
@click.option(
    "--remove-diacritics",
    is_flag=True,
    help="Score without accents, for references written without them (asterisk:es does).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def eval_command(
    architecture,
    dataset,
    build_args,
    size,
    checkpoint,
    seed,
    variants,
    language,
    transcripts,
    min_words,
    limit,
    jobs,
    output_dir,
    remove_diacritics,
    quiet,
) -> None:
    """Word error rate of ARCHITECTURE's variants beside its stock model on DATASET.

    DATASET (whisper): asterisk:en / asterisk:es (Debian's Asterisk prompts), a folder of
    audio files with a .txt beside each, or a TSV of AUDIO<TAB>TEXT lines. Results are cached
    per utterance in the output directory: a rerun computes only what is missing. Build
    options of the architecture (`ane list`) may follow DATASET.
    """
    arch = get_architecture(architecture)
    evaluate = getattr(arch, "evaluate", None)
    if evaluate is None:
        raise UsageError(
            f"architecture {arch.name} has no word error rate evaluation.",
            "Run `ane list` to see the installed architectures.",
        )
    build_options = parse_build_options(arch, tuple(build_args))
    check_writable(output_dir)
    bar = ProgressBar(enabled=not quiet)
    try:
        report = evaluate(
            dataset,
            variants=list(variants),
            output_dir=str(output_dir),
            size=size,
            checkpoint=checkpoint,
            seed=seed,
            jobs=jobs,
            build_options=build_options,
            language=language,
            transcripts=str(transcripts) if transcripts else None,
            min_words=min_words,
            limit=limit,
            remove_diacritics=remove_diacritics,
            progress=bar,
            note=bar.note,
        )
    finally:
        bar.close()
    click.echo(report["table"])
    for kind, path in report.get("files", {}).items():
        click.echo(f"{kind}: {path}")
