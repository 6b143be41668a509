"""Transcribing utterances with one variant, in this process or in ``jobs`` worker processes.

Why processes: the reference executor and PyTorch's CPU kernels hold the GIL or use their own
threads, so utterances only run side by side in separate processes. Each worker loads the
weights and builds the variant once (:class:`VariantJob` is what it needs, sent pickled), then
transcribes one utterance per task; the parent alone writes the cache. Workers are spawned,
not forked (a fork of a process that has run torch can deadlock in its thread pools), and
each gets an equal share of the CPU threads. Every utterance is decoded after
``torch.manual_seed(0)``, so the temperature fallback samples the same way whichever worker
takes it, and ``--jobs N`` gives the results of ``--jobs 1``.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import torch
import whisper
from ane_core.architecture import Architecture
from ane_core.compress import parse_compression

from whisper_ane.evaluation.variants import Variant
from whisper_ane.runtime.transcription import make_transcriber
from whisper_ane.weights.source import LoadedWeights, build_whisper, load_weights

SEED = 0
"""``torch.manual_seed`` before every utterance (the fallback's sampling)."""

Transcribe = Callable[[str], str]


@dataclass(frozen=True)
class VariantJob:
    """Everything a process needs to build one variant: picklable, so workers rebuild it."""

    architecture: Architecture
    size: str | None
    checkpoint: str | None
    seed: int
    variant: Variant
    language: str | None
    build_options: Mapping[str, Any] = field(default_factory=dict)


def build(job: VariantJob, weights: LoadedWeights | None = None) -> Transcribe:
    """A function of one audio path returning its text, for ``job``'s variant: stock
    openai-whisper (``whisper.transcribe`` with its defaults, fp32 on the CPU) or the plugin's
    transcriber (whisper's defaults too, through ``ane transcribe``'s code)."""
    if weights is None:
        weights = load_weights(job.size, job.checkpoint, seed=job.seed)
    variant = job.variant
    if variant.is_stock:
        model = build_whisper(weights)

        def stock(path: str) -> str:
            result = whisper.transcribe(model, path, language=job.language, fp16=False)
            return result["text"].strip()

        return stock
    run = make_transcriber(
        job.architecture,
        weights,
        backend=variant.backend,
        precision=variant.precision,
        build_options=dict(job.build_options) if variant.layout == "native" else None,
        layout=variant.layout,
        size=job.size,
        compression=parse_compression(variant.compression),
    )

    def ours(path: str) -> str:
        return run(path, language=job.language)["text"]

    return ours


def timed(transcribe: Transcribe, path: str) -> tuple[str, float]:
    """The text and the seconds it took, decoded from a fixed seed."""
    torch.manual_seed(SEED)
    start = time.perf_counter()
    text = transcribe(path)
    return text, time.perf_counter() - start


_worker: Transcribe | None = None


def _start_worker(job: VariantJob, threads: int) -> None:
    global _worker
    torch.set_num_threads(threads)
    _worker = build(job)


def _work(path: str) -> tuple[str, float]:
    assert _worker is not None, "worker not started"
    return timed(_worker, path)


def transcribe_all(
    job: VariantJob,
    paths: Sequence[str],
    *,
    jobs: int = 1,
    weights: LoadedWeights | None = None,
) -> Iterator[tuple[int, str, float]]:
    """``(index into paths, text, seconds)`` per path, as each finishes (any order when
    ``jobs`` > 1). ``weights``: already loaded, for the in-process run."""
    if not paths:
        return
    if jobs <= 1:
        transcribe = build(job, weights)
        for index, path in enumerate(paths):
            yield (index, *timed(transcribe, path))
        return
    workers = min(jobs, len(paths))
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(job, threads)
    ) as pool:
        futures = {pool.submit(_work, path): index for index, path in enumerate(paths)}
        for future in as_completed(futures):
            yield (futures[future], *future.result())
