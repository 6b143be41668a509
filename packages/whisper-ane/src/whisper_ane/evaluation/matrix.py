"""``ane eval whisper``: word error rate of variants of one model beside stock openai-whisper
on the same audio.

Order of work, so that problems come first and nothing is computed twice: the variants are
parsed (a bad spelling is one line before anything loads), the audio is checked (unreadable
files are skipped and counted), the weights load once, each package variant is exported in
this process before any worker starts (workers then only read the kept packages), and each
variant transcribes only the utterances its cache (:mod:`whisper_ane.evaluation.cache`) does
not hold yet. Stock always runs first: every variant is compared with its text.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ane_core.architecture import Architecture
from ane_core.errors import UsageError

from whisper_ane.evaluation.audio_check import CheckedAudio, check_audio
from whisper_ane.evaluation.cache import ResultCache, result_key
from whisper_ane.evaluation.datasets import Dataset, Skipped, spoken_text
from whisper_ane.evaluation.report import write_report
from whisper_ane.evaluation.runner import VariantJob, build, transcribe_all
from whisper_ane.evaluation.variants import STOCK_VARIANT, Variant, parse_variant
from whisper_ane.evaluation.wer import WordCounts, normalizer, total, word_counts
from whisper_ane.runtime.package_backend import PACKAGE_BACKENDS, PACKAGES_DIR_ENV
from whisper_ane.weights.source import LoadedWeights

Progress = Callable[[str, int, int], None]
"""``progress(what, done, total)``: called as utterances finish (the CLI draws a bar)."""

Note = Callable[[str], None]


def parse_variants(specs: Sequence[str | Variant]) -> list[Variant]:
    """Stock first, then each variant once, in the order given."""
    variants = [STOCK_VARIANT]
    for spec in specs:
        variant = spec if isinstance(spec, Variant) else parse_variant(spec)
        if variant not in variants:
            variants.append(variant)
    return variants


def weights_digest(weights: LoadedWeights) -> str:
    """Which weights: the checkpoint's SHA-256, or a digest of the source's description
    (random weights: the seed)."""
    return weights.sha256 or hashlib.sha256(weights.source.encode()).hexdigest()


def variant_key(variant: Variant, language: str | None, build_options: Mapping[str, Any]) -> str:
    """The settings a variant's cached results depend on, besides audio and weights."""
    options = {} if variant.is_stock or variant.layout != "native" else dict(build_options)
    return json.dumps(
        {"variant": variant.label, "language": language, "build": sorted(options.items())},
        default=repr,
    )


@contextlib.contextmanager
def kept_packages(directory: Path) -> Iterator[None]:
    """``$ANE_PACKAGES_DIR`` set (to ``directory`` unless the user set it) while the run
    lasts: exports made once are found by every worker and by the next run."""
    previous = os.environ.get(PACKAGES_DIR_ENV)
    if previous is None:
        os.environ[PACKAGES_DIR_ENV] = str(directory)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(PACKAGES_DIR_ENV, None)


def _selection(dataset: Dataset) -> str:
    left_out = ", ".join(f"{n} {why}" for why, n in dataset.excluded.items())
    return f"left out: {left_out}" if left_out else "all of them"


def evaluate(
    architecture: Architecture,
    dataset: Dataset,
    variants: Sequence[str | Variant],
    *,
    output_dir: str | Path,
    size: str | None = None,
    checkpoint: str | None = None,
    seed: int = 0,
    jobs: int = 1,
    build_options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    note: Note | None = None,
) -> dict[str, Any]:
    """WER of every variant and of stock openai-whisper on ``dataset`` (already selected,
    see :func:`~whisper_ane.evaluation.datasets.select`); writes ``eval.json``, ``eval.md``,
    ``wer.png`` and the per-variant caches (``cache/*.jsonl``) into ``output_dir`` and returns
    the report (what ``eval.json`` holds).

    ``architecture``: the registered Whisper architecture (it exports the packages);
    ``variants``: :class:`Variant` or their spelling (``mil:fp16:int8``); ``build_options``:
    as ``ane export whisper`` takes them, for every native variant; ``jobs``: worker
    processes per variant; ``note``: receives one line per skipped utterance.
    """
    if jobs < 1:
        raise UsageError(f"--jobs {jobs} is not a number of processes.", "Use 1 or more.")
    chosen = parse_variants(variants)
    options = dict(build_options or {})
    say = note or (lambda line: None)
    output = Path(output_dir)
    norm = normalizer(dataset.language, dataset.remove_diacritics)
    skipped: list[Skipped] = list(dataset.skipped)
    usable: list[CheckedAudio] = []
    references: dict[str, str] = {}
    checked, bad_audio = check_audio(
        dataset.utterances,
        jobs=jobs,
        on_done=lambda n: progress and progress("audio", n, len(dataset.utterances)),
    )
    skipped += bad_audio
    for item in checked:
        reference = norm(spoken_text(item.utterance.text))
        if not reference.split():
            reason = f"{item.utterance.audio}: its transcript has no words once normalized"
            skipped.append(Skipped(item.utterance.id, reason))
            continue
        references[item.utterance.id] = reference
        usable.append(item)
    for item in skipped:
        say(f"skipped {item.id}: {item.reason}")
    if not usable:
        raise UsageError(
            f"no utterance of {dataset.name} is left to evaluate ({len(skipped)} skipped, "
            f"{sum(dataset.excluded.values())} left out by the filters).",
            "Check the dataset, or lower --min-words.",
        )
    weights = architecture.load_weights(size, checkpoint, seed=seed)
    output.mkdir(parents=True, exist_ok=True)
    digest = weights_digest(weights)
    runs: dict[Variant, dict[str, dict[str, Any]]] = {}
    wall: dict[Variant, float] = {}
    with kept_packages(output / "packages"):
        for variant in chosen:
            job = VariantJob(
                architecture, size, checkpoint, seed, variant, dataset.language, options
            )
            start = time.perf_counter()
            runs[variant] = _run_variant(
                job, usable, output, digest, weights, jobs=jobs, progress=progress
            )
            wall[variant] = time.perf_counter() - start
    report = _report(dataset, chosen, usable, references, runs, wall, skipped, weights, size)
    report["normalizer"] = norm.name
    report["jobs"] = jobs
    report["build_options"] = {k: repr(v) for k, v in options.items()}
    write_report(report, output)
    return report


def _run_variant(
    job: VariantJob,
    usable: Sequence[CheckedAudio],
    output: Path,
    digest: str,
    weights: LoadedWeights,
    *,
    jobs: int,
    progress: Progress | None,
) -> dict[str, dict[str, Any]]:
    """Each utterance's record for ``job``'s variant: from the cache, or transcribed now."""
    variant = job.variant
    cache = ResultCache(output / "cache" / f"{variant.slug}.jsonl")
    vkey = variant_key(variant, job.language, job.build_options)
    keys = {
        item.utterance.id: result_key(item.utterance.id, item.sha256, vkey, digest)
        for item in usable
    }
    records = {u: cache.get(k) for u, k in keys.items() if cache.get(k) is not None}
    todo = [item for item in usable if item.utterance.id not in records]
    if progress:
        progress(variant.label, len(records), len(usable))
    if todo and jobs > 1 and (variant.backend in PACKAGE_BACKENDS or variant.layout != "native"):
        build(job, weights)  # export here once; the workers then load the kept packages
    paths = [str(item.utterance.audio) for item in todo]
    run_weights = weights if jobs <= 1 else None
    for index, text, seconds in transcribe_all(job, paths, jobs=jobs, weights=run_weights):
        item = todo[index]
        record = {
            "key": keys[item.utterance.id],
            "id": item.utterance.id,
            "audio": str(item.utterance.audio),
            "audio_sha256": item.sha256,
            "audio_seconds": item.seconds,
            "variant": variant.label,
            "weights": digest,
            "text": text,
            "seconds": seconds,
        }
        cache.add(record)
        records[item.utterance.id] = record
        if progress:
            progress(variant.label, len(records), len(usable))
    return records


def _report(
    dataset: Dataset,
    variants: Sequence[Variant],
    usable: Sequence[CheckedAudio],
    references: Mapping[str, str],
    runs: Mapping[Variant, Mapping[str, Mapping[str, Any]]],
    wall: Mapping[Variant, float],
    skipped: Sequence[Skipped],
    weights: LoadedWeights,
    size: str | None,
) -> dict[str, Any]:
    norm = normalizer(dataset.language, dataset.remove_diacritics)
    stock = {u: norm(r["text"]) for u, r in runs[STOCK_VARIANT].items()}
    audio_seconds = sum(item.seconds for item in usable)
    summaries = []
    utterances = []
    for item in usable:
        uid = item.utterance.id
        row: dict[str, Any] = {
            "id": uid,
            "audio": str(item.utterance.audio),
            "audio_seconds": round(item.seconds, 3),
            "reference": item.utterance.text,
            "reference_normalized": references[uid],
            "hypotheses": {},
        }
        for variant in variants:
            record = runs[variant][uid]
            hyp = norm(record["text"])
            counts = word_counts(references[uid], hyp)
            row["hypotheses"][variant.label] = {
                "text": record["text"],
                "normalized": hyp,
                "seconds": round(record["seconds"], 3),
                **counts.as_dict(),
            }
        utterances.append(row)
    for variant in variants:
        per: list[WordCounts] = []
        differences = []
        seconds = 0.0
        for item in usable:
            uid = item.utterance.id
            record = runs[variant][uid]
            hyp = norm(record["text"])
            per.append(word_counts(references[uid], hyp))
            seconds += record["seconds"]
            if hyp != stock[uid]:
                differences.append(
                    {
                        "id": uid,
                        "reference": references[uid],
                        "stock": stock[uid],
                        "variant": hyp,
                    }
                )
        counts = total(per)
        summaries.append(
            {
                "variant": variant.label,
                "backend": variant.backend,
                "precision": variant.precision.value,
                "compression": variant.compression,
                "layout": variant.layout,
                "wer_percent": 100.0 * counts.wer,
                **counts.as_dict(),
                "utterances": len(usable),
                "skipped": len(skipped),
                "differ_from_stock": len(differences),
                "transcribe_seconds": round(seconds, 3),
                "seconds_per_utterance": round(seconds / len(usable), 3) if usable else 0.0,
                "real_time_factor": round(seconds / audio_seconds, 4) if audio_seconds else 0.0,
                "wall_seconds": round(wall[variant], 1),
                "differences": differences,
            }
        )
    return {
        "dataset": {
            "name": dataset.name,
            "language": dataset.language,
            "evaluated": len(usable),
            "audio_seconds": round(audio_seconds, 2),
            "selection": _selection(dataset),
            "excluded": dict(dataset.excluded),
        },
        "weights": {"source": weights.source, "sha256": weights.sha256, "size": size},
        "variants": summaries,
        "skipped": [{"id": s.id, "reason": s.reason} for s in skipped],
        "utterances": utterances,
    }
