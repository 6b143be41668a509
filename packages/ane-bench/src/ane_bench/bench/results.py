"""Write a results document: results.json, results.md and the PNG plots.

Why JSON first and atomically: results.json is the record other tools read; the table and
plots are views of it and can always be drawn again from it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ane_bench.bench.plots import PLOTS_NEED, matplotlib_available, plot_export, plot_latency
from ane_bench.bench.table import render_markdown


def _write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory and rename: never half a file."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_results(results: dict[str, Any], output_dir: Path) -> tuple[list[Path], list[str]]:
    """Write every view of ``results`` into ``output_dir``; return the paths and notes
    about views that could not be drawn."""
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    json_path = output_dir / "results.json"
    _write_text(json_path, json.dumps(results, indent=2, sort_keys=False) + "\n")
    written.append(json_path)
    markdown_path = output_dir / "results.md"
    _write_text(markdown_path, render_markdown(results))
    written.append(markdown_path)
    notes = []
    if matplotlib_available():
        for plot, name in ((plot_latency, "latency.png"), (plot_export, "export.png")):
            drawn = plot(results, output_dir / name)
            if drawn is not None:
                written.append(drawn)
    else:
        notes.append(PLOTS_NEED)
    return written, notes
