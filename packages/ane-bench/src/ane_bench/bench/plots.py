"""PNG plots of a results document: PyTorch latency and export cost per size and arch.

Why matplotlib with the Agg backend: it draws files without a display (CI, SSH), and it is
an optional extra (``ane-bench[bench]``) so the ``ane`` command does not pull it in for users
who never benchmark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

GIB = 2**30

PLOTS_NEED = "plots need matplotlib: pip install 'ane-bench[bench]'"


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grouped_bars(ax: Any, groups: list[str], series: dict[str, list[Any]], **kw: Any) -> None:
    """One bar per series in each group; a missing value (``None``) leaves a gap."""
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        heights = [v if v is not None else 0.0 for v in values]
        errors = kw.get("errors", {}).get(name)
        ax.bar(xs, heights, width, label=name, yerr=errors, capsize=3 if errors else 0)
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.legend(fontsize=8)


def plot_latency(results: dict[str, Any], path: Path) -> Path | None:
    """Median PyTorch CPU latency per (size, component, case), one bar per arch; whiskers
    span the fastest and slowest run."""
    measurements = results["pytorch_latency"]
    if not measurements:
        return None
    plt = _pyplot()
    keys = list(dict.fromkeys((m["size"], m["component"], m["case"]) for m in measurements))
    variants = list(dict.fromkeys(m["variant"] for m in measurements))
    lookup = {(m["size"], m["component"], m["case"], m["variant"]): m for m in measurements}
    series: dict[str, list[Any]] = {}
    errors: dict[str, list[list[float]]] = {}
    for variant in variants:
        found = [lookup.get((*key, variant)) for key in keys]
        series[variant] = [m["median_s"] * 1e3 if m else None for m in found]
        errors[variant] = [
            [(m["median_s"] - m["min_s"]) * 1e3 if m else 0.0 for m in found],
            [(m["max_s"] - m["median_s"]) * 1e3 if m else 0.0 for m in found],
        ]
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(keys)), 4))
    groups = [f"{size}\n{component}\n{case}" for size, component, case in keys]
    _grouped_bars(ax, groups, series, errors=errors)
    ax.set_ylabel("median latency, ms (whiskers: min-max)")
    ax.set_yscale("log")
    ax.set_title("PyTorch CPU latency (float32)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_export(results: dict[str, Any], path: Path) -> Path | None:
    """Export wall time and peak RSS per (size, precision, compression), one bar per arch."""
    processes = results["export_processes"]
    if not processes:
        return None
    plt = _pyplot()
    keys = list(
        dict.fromkeys((p["size"], p["precision"], p.get("compression", "none")) for p in processes)
    )
    variants = list(dict.fromkeys(p["variant"] for p in processes))
    lookup = {
        (p["size"], p["precision"], p.get("compression", "none"), p["variant"]): p
        for p in processes
    }
    groups = [
        f"{size}\n{precision}" + (f" {compression}" if compression != "none" else "")
        for size, precision, compression in keys
    ]
    fig, (time_ax, memory_ax) = plt.subplots(1, 2, figsize=(max(8, 2.0 * len(keys)), 4))
    for ax, field, scale, label in (
        (time_ax, "process_wall_s", 1.0, "export wall time, s"),
        (memory_ax, "process_peak_rss_bytes", 1 / GIB, "export peak RSS, GiB"),
    ):
        series = {
            v: [lookup[(*k, v)][field] * scale if (*k, v) in lookup else None for k in keys]
            for v in variants
        }
        _grouped_bars(ax, groups, series)
        ax.set_ylabel(label)
    components = ", ".join(results["settings"]["components"])
    fig.suptitle(f"Export cost ({components}, weights loading included)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
