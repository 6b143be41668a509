"""results.json as Markdown tables: export cost, PyTorch latency, Core ML.

Why Markdown: it pastes into an issue or a README as-is. Every cell is a figure from the
results (or a ratio of two of them); a figure that could not be measured is shown as the
reason it is missing, e.g. "needs macOS".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ane_bench.bench.coreml import COMPUTE_UNITS

GIB = 2**30
MIB = 2**20


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: Sequence[str], rows: list[Sequence[object]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def _seconds(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) else str(value)


def _ms(figures: Any) -> str:
    if isinstance(figures, dict) and "median_s" in figures:
        return f"{figures['median_s'] * 1e3:.1f} (IQR {figures['iqr_s'] * 1e3:.1f})"
    return str(figures)


def _share(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, (int, float)) else str(value)


def export_process_table(results: dict[str, Any]) -> list[str]:
    rows = [
        [
            p["size"],
            p["variant"],
            p["precision"],
            p.get("compression", "none"),
            ", ".join(p["components"]),
            _seconds(p["load_weights_s"]),
            _seconds(p["process_wall_s"]),
            f"{p['process_peak_rss_bytes'] / GIB:.2f}",
        ]
        for p in results["export_processes"]
    ]
    header = [
        "size", "arch", "precision", "compress", "components", "load weights s", "wall s",
        "peak RSS GiB",
    ]  # fmt: skip
    return _table(header, rows)


def export_table(results: dict[str, Any]) -> list[str]:
    phases = ("build", "trace", "convert", "save")
    rows = []
    for e in results["exports"]:
        peaks = e["phase_peak_rss_bytes"]
        worst = max(peaks, key=peaks.get)
        rows.append(
            [
                e["size"],
                e["variant"],
                e["precision"],
                e.get("compression", "none"),
                e["component"],
                *(_seconds(e["phases_s"].get(p, "-")) for p in phases),
                _seconds(e["export_s"]),
                f"{peaks[worst] / GIB:.2f} ({worst})",
                f"{e['package_bytes'] / MIB:.1f}",
                f"{e['inspect']['weight_bytes'] / MIB:.1f}",
                e["inspect"]["ops"],
                e["inspect"]["op_counts"].get("cast", 0),
                e["inspect"]["findings"],
                f"{e['inspect']['flops'] / 1e9:.3g}",
            ]
        )
    header = [
        "size", "arch", "precision", "compress", "component", *(f"{p} s" for p in phases),
        "export s", "peak RSS GiB (phase)", "package MiB", "weights MiB", "ops", "cast",
        "findings", "GFLOPs",
    ]  # fmt: skip
    return _table(header, rows)


def latency_table(results: dict[str, Any]) -> list[str]:
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for m in results["pytorch_latency"]:
        key = (m["size"], m["component"], m["case"])
        by_key.setdefault(key, {})[m["variant"]] = m
    variants = list(dict.fromkeys(m["variant"] for m in results["pytorch_latency"]))
    rows = []
    for (size, component, case), measured in by_key.items():
        cells: list[object] = [size, component, case]
        cells += [_ms(measured.get(v, "-")) for v in variants]
        if "ane" in measured and "stock" in measured:
            cells.append(f"{measured['stock']['median_s'] / measured['ane']['median_s']:.2f}x")
        elif len(variants) > 1:
            cells.append("-")
        rows.append(cells)
    header = ["size", "component", "case", *(f"{v} median ms" for v in variants)]
    if len(variants) > 1:
        header.append("stock/ane")
    return _table(header, rows)


def coreml_table(results: dict[str, Any]) -> list[str]:
    rows = []
    for e in results["exports"]:
        c = e["coreml"]
        if "error" in c:
            rows.append([e["size"], e["variant"], e["precision"], e["component"], c["error"]])
            continue
        rows.append(
            [
                e["size"],
                e["variant"],
                e["precision"],
                e["component"],
                _seconds(c["compile_s"]),
                *(_seconds(c["load_s"][u]) for u in COMPUTE_UNITS),
                *(_ms(c["latency"][u]) for u in COMPUTE_UNITS),
                _share(c["ane_op_share"]),
            ]
        )
    header = [
        "size", "arch", "precision", "component", "compile s",
        *(f"load {u} s" for u in COMPUTE_UNITS), *(f"{u} ms" for u in COMPUTE_UNITS),
        "ANE op share",
    ]  # fmt: skip
    return _table(header, rows)


def render_markdown(results: dict[str, Any]) -> str:
    """The whole results file as Markdown: one section per table, plus the errors."""
    env = results["environment"]
    machine, system = env["machine"], env["os"]
    memory = machine["memory_bytes"]
    settings = results["settings"]
    latency_measured = settings.get("latency", True)  # results.json files before the flag
    lines = [
        f"# ane bench: {settings['architecture']}",
        "",
        f"{system['platform']}, {machine['arch']}, {machine['cpus']} CPUs"
        + (f", {memory / GIB:.0f} GiB" if memory else "")
        + f"; Python {env['python']}; torch {env['packages'].get('torch')}, "
        f"coremltools {env['packages'].get('coremltools')}; commit {env['git']['commit']}"
        + (" (dirty)" if env["git"]["dirty"] else "")
        + f"; {env['created']}.",
        "",
        f"Weights: {_weights(settings['weights'])}. "
        + (
            f"Latency: {settings['warmup']} warm-up run(s), median of {settings['repeat']}."
            if latency_measured
            else "Latency: not measured (--no-latency)."
        ),
        "",
        "## Export processes",
        "",
        *export_process_table(results),
        "",
        "## Exports",
        "",
        *export_table(results),
        "",
        "## PyTorch CPU latency (float32)",
        "",
        *(
            latency_table(results)
            if latency_measured
            else ["Not measured: the run had --no-latency."]
        ),
        "",
        "## Core ML",
        "",
        *coreml_table(results),
        "",
    ]
    if results["errors"]:
        lines += ["## Errors", ""]
        lines += [f"- {e['step']}: {e['error']} ({_where(e)})" for e in results["errors"]]
        lines.append("")
    return "\n".join(lines)


def _weights(by_size: dict[str, str | None]) -> str:
    return "; ".join(f"{size}: {source or 'default source'}" for size, source in by_size.items())


def _where(error: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in error.items() if k not in ("step", "error"))
