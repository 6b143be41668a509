"""An evaluation's report: the summary table on stdout, and JSON, Markdown and a PNG on disk.

Why three files: JSON for scripts (every utterance's texts and counts), Markdown to paste in a
README or an issue (the table, then where each variant's text differs from stock's), and a
bar chart to see the trade-off at a glance. matplotlib draws the chart with its file-only
Agg backend; without it (``pip install 'whisper-ane[eval]'``) the PNG is left out and the
report says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ane_core.errors import OutputError

JSON_NAME, MARKDOWN_NAME, PNG_NAME = "eval.json", "eval.md", "wer.png"

_COLUMNS = (  # (title, key, format)
    ("variant", "variant", "{}"),
    ("WER %", "wer_percent", "{:.2f}"),
    ("S", "substitutions", "{}"),
    ("D", "deletions", "{}"),
    ("I", "insertions", "{}"),
    ("ref words", "reference_words", "{}"),
    ("utterances", "utterances", "{}"),
    ("skipped", "skipped", "{}"),
    ("differ from stock", "differ_from_stock", "{}"),
    ("s / utterance", "seconds_per_utterance", "{:.2f}"),
    ("RTF", "real_time_factor", "{:.3f}"),
    ("wall s", "wall_seconds", "{:.0f}"),
)


def table_rows(report: Mapping[str, Any]) -> list[list[str]]:
    """The summary table: a header row, then one row per variant."""
    rows = [[title for title, _, _ in _COLUMNS]]
    for summary in report["variants"]:
        rows.append([form.format(summary[key]) for _, key, form in _COLUMNS])
    return rows


def text_table(report: Mapping[str, Any]) -> str:
    """The summary as aligned plain text (what ``ane eval`` prints)."""
    rows = table_rows(report)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def markdown(report: Mapping[str, Any]) -> str:
    """The table, the run's settings, what was skipped, and each variant's differences."""
    rows = table_rows(report)
    lines = [
        f"# WER on {report['dataset']['name']}",
        "",
        f"Weights: {report['weights']['source']} (size {report['weights']['size']}); "
        f"language {report['dataset']['language'] or 'detected'}; normalizer "
        f"{report['normalizer']}; {report['dataset']['evaluated']} utterances "
        f"({report['dataset']['selection']}).",
        "",
        "| " + " | ".join(rows[0]) + " |",
        "| " + " | ".join("---" for _ in rows[0]) + " |",
        *("| " + " | ".join(row) + " |" for row in rows[1:]),
        "",
    ]
    if report["skipped"]:
        lines += [f"## Skipped ({len(report['skipped'])})", ""]
        lines += [f"- `{item['id']}`: {item['reason']}" for item in report["skipped"]]
        lines.append("")
    for summary in report["variants"]:
        if not summary["differences"]:
            continue
        lines += [f"## {summary['variant']}: differs from stock", ""]
        lines += ["| utterance | reference | stock | variant |", "| --- | --- | --- | --- |"]
        for diff in summary["differences"]:
            cells = [diff["id"], diff["reference"], diff["stock"], diff["variant"]]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def write_png(report: Mapping[str, Any], path: Path) -> bool:
    """A bar chart of WER % per variant; ``False`` when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [s["variant"] for s in report["variants"]]
    values = [s["wer_percent"] for s in report["variants"]]
    figure, axes = plt.subplots(figsize=(max(6.0, 0.9 * len(labels) + 2), 4.5))
    bars = axes.bar(range(len(labels)), values, color="tab:blue")
    axes.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=8)
    axes.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    axes.set_ylabel("WER %")
    axes.set_title(f"WER on {report['dataset']['name']} ({report['weights']['size']})")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True


def write_report(report: dict[str, Any], output_dir: str | Path) -> dict[str, str]:
    """Write JSON, Markdown and the PNG into ``output_dir``; the paths written (a PNG that
    could not be drawn is named under ``png_missing``)."""
    directory = Path(output_dir)
    written: dict[str, str] = {}
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MARKDOWN_NAME).write_text(markdown(report), encoding="utf-8")
        written["markdown"] = str(directory / MARKDOWN_NAME)
        if write_png(report, directory / PNG_NAME):
            written["png"] = str(directory / PNG_NAME)
        else:
            written["png_missing"] = "no matplotlib: pip install 'whisper-ane[eval]'"
        written["json"] = str(directory / JSON_NAME)
        report["files"] = written
        text = json.dumps(report, indent=2, ensure_ascii=False)
        (directory / JSON_NAME).write_text(text + "\n", encoding="utf-8")
    except OSError as error:
        raise OutputError(
            f"cannot write the evaluation report into {directory} ({error.strerror or error}).",
            "Pick another directory with -o.",
        ) from None
    return written
