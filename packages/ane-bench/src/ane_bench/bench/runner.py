"""Run a benchmark matrix: each export job, the Core ML figures of each package, and the
PyTorch latency of each size, every one in its own child process; return results.json's
content.

Why a failure does not stop the run: one combination running out of memory says something
about that combination; the others' figures are still worth having. Failures are listed in
the results and make the command exit non-zero.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ane_core.architecture import Architecture

from ane_bench.bench import coreml
from ane_bench.bench.child import ChildFailed, run_job
from ane_bench.bench.environment import describe_environment
from ane_bench.bench.export_job import export_job
from ane_bench.bench.latency_job import latency_job
from ane_bench.bench.matrix import Matrix
from ane_bench.bench.progress import BenchProgress

SCHEMA = "ane-bench/1"


@dataclass
class BenchSettings:
    """Everything a run needs, already validated."""

    architecture: Architecture
    matrix: Matrix
    weights: dict[str | None, str | None]
    seed: int
    target: str
    warmup: int
    repeat: int
    output_dir: Path
    keep_packages: bool = False
    latency: bool = True

    def describe(self) -> dict[str, Any]:
        m = self.matrix
        return {
            "architecture": self.architecture.name,
            "sizes": list(m.sizes),
            "variants": list(m.variants),
            "precisions": [p.value for p in m.precisions],
            "compressions": [c.name for c in m.compressions],
            "components": list(m.components),
            "weights": {str(size): source for size, source in self.weights.items()},
            "seed": self.seed,
            "target": self.target,
            "warmup": self.warmup,
            "repeat": self.repeat,
            "latency": self.latency,
        }


def count_steps(settings: BenchSettings) -> int:
    jobs = len(settings.matrix.export_jobs)
    coreml_steps = jobs * len(settings.matrix.components) if coreml.available() else 0
    return jobs + coreml_steps + (len(settings.matrix.sizes) if settings.latency else 0)


def run_bench(settings: BenchSettings, progress: BenchProgress) -> dict[str, Any]:
    """Measure everything ``settings`` asks for; returns the results document."""
    arch = settings.architecture
    packages_dir = settings.output_dir / "packages"
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "command": sys.argv,
        "settings": settings.describe(),
        "environment": describe_environment(getattr(arch, "metadata_packages", ())),
        "exports": [],
        "export_processes": [],
        "pytorch_latency": [],
        "errors": [],
    }
    for job in settings.matrix.export_jobs:
        progress.start_step(f"export {arch.name} {job.label}: {', '.join(job.components)}")
        where = {
            "size": job.size,
            "variant": job.variant,
            "precision": job.precision.value,
            "compression": job.compression.name,
        }
        try:
            measured = run_job(
                export_job,
                arch,
                job.size,
                job.variant,
                job.precision.value,
                job.components,
                settings.weights[job.size],
                settings.seed,
                settings.target,
                str(packages_dir),
                job.compression.name,
                on_event=progress.event,
            )
        except ChildFailed as error:
            progress.note(f"failed: {error}")
            results["errors"].append({**where, "step": "export", "error": str(error)})
            continue
        exports = measured.pop("exports")
        results["export_processes"].append(
            {**where, "components": list(job.components), **measured}
        )
        for entry in exports:
            entry["coreml"] = _coreml_figures(entry["package"], settings, progress, results)
            results["exports"].append({**where, **entry})
            if not settings.keep_packages:
                shutil.rmtree(entry["package"], ignore_errors=True)
    if settings.latency:
        for size in settings.matrix.sizes:
            progress.start_step(f"PyTorch CPU latency {arch.name} {size or ''}".rstrip())
            try:
                measured = run_job(
                    latency_job,
                    arch,
                    size,
                    settings.matrix.variants,
                    settings.matrix.components,
                    settings.weights[size],
                    settings.seed,
                    settings.warmup,
                    settings.repeat,
                    on_event=progress.event,
                )
            except ChildFailed as error:
                progress.note(f"failed: {error}")
                results["errors"].append({"size": size, "step": "latency", "error": str(error)})
                continue
            for entry in measured["measurements"]:
                results["pytorch_latency"].append({"size": size, **entry})
    if not settings.keep_packages and packages_dir.is_dir() and not any(packages_dir.iterdir()):
        packages_dir.rmdir()
    return results


def _coreml_figures(
    package: str, settings: BenchSettings, progress: BenchProgress, results: dict[str, Any]
) -> dict[str, Any]:
    if not coreml.available():
        return coreml.unavailable_figures()
    progress.start_step(f"Core ML {Path(package).name}")
    try:
        return run_job(
            coreml.coreml_job,
            package,
            settings.warmup,
            settings.repeat,
            on_event=progress.event,
        )
    except ChildFailed as error:
        progress.note(f"failed: {error}")
        results["errors"].append({"package": package, "step": "coreml", "error": str(error)})
        return {"available": False, "error": str(error)}
