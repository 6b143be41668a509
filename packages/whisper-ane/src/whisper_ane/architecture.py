"""The ``whisper`` architecture: what the plugin registers with ane-core.

It is the top of whisper-ane's layers (see the package README): every method hands over to
the export layer (building components), the runtime layer (decoding, parity inputs, latency
cases) or the weights layer, and nothing below imports it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ane_core.architecture import Architecture, ExportableModel, Layout, LayoutPlan
from ane_core.build_options import BuildOption
from ane_core.package_items import PackageItem
from ane_core.targets import Precision

from whisper_ane.evaluation import evaluate as evaluate_variants
from whisper_ane.evaluation import open_dataset, select
from whisper_ane.evaluation.report import text_table
from whisper_ane.export.alignment_heads import ALIGNMENT_HEADS_OPTION, format_alignment_heads
from whisper_ane.export.components import (
    BUILD_OPTIONS,
    COMPONENTS,
    CROSS_KV_OPTION,
    LOGITS_OPTION,
    STATEFUL_COMPONENTS,
    build_component,
)
from whisper_ane.export.host_embedding import embeds_on_host, table_item
from whisper_ane.export.layouts import layout_plan, layouts
from whisper_ane.runtime import latency, parity_inputs
from whisper_ane.runtime.audio_files import check_audio_files
from whisper_ane.runtime.layout_parity_inputs import layout_parity_inputs
from whisper_ane.runtime.package_transcripts import package_transcripts
from whisper_ane.runtime.transcription import BACKENDS, check_transcription, make_transcriber
from whisper_ane.weights import SIZES
from whisper_ane.weights.lazy import LazyStateDict
from whisper_ane.weights.source import LoadedWeights, load_weights


class WhisperArchitecture(Architecture):
    """OpenAI Whisper: stock and ANE-optimised encoder, cross-attention K/V and decoder."""

    name = "whisper"
    description = "OpenAI Whisper speech recognition"
    metadata_packages = ("whisper-ane", "openai-whisper")

    def sizes(self) -> Sequence[str]:
        return SIZES

    def components(self) -> Sequence[str]:
        return COMPONENTS

    def stateful_components(self, variant: str) -> Sequence[str]:
        """``--stateful``: the ANE decoder keeps its self-attention cache as Core ML state."""
        return STATEFUL_COMPONENTS.get(variant, ())

    def load_weights(
        self, size: str | None, checkpoint: str | None, seed: int = 0
    ) -> LoadedWeights:
        return load_weights(size, checkpoint, seed=seed)  # size None: dims from the checkpoint

    def release_weights(self, weights: LoadedWeights, remaining: Sequence[str]) -> None:
        """Free ``encoder.*`` once no encoder is left to export, ``decoder.*`` once neither
        cross_kv nor decoder is (a medium encoder is 1.2 GB of float32); tensors read lazily
        (:mod:`whisper_ane.weights.lazy`) are all dropped, to be read again by the next
        component that needs them, so each export holds only its own."""
        for prefix, users in (("encoder.", {"encoder"}), ("decoder.", {"cross_kv", "decoder"})):
            if not users & set(remaining):
                for name in [n for n in weights.state_dict if n.startswith(prefix)]:
                    del weights.state_dict[name]
        if isinstance(weights.state_dict, LazyStateDict):
            weights.state_dict.unload()

    def latency_cases(self, component, variant, weights, **options):
        return latency.latency_cases(self, component, variant, weights, **options)

    def check_input_files(self, files: Sequence[str]) -> None:
        """Input files are audio: they must decode and hold sound."""
        super().check_input_files(files)
        check_audio_files(files)

    def parity_inputs(self, component, variant, weights, files=(), **options):
        return parity_inputs.parity_inputs(
            component, variant, weights, files, host_embedding=embeds_on_host(options)
        )

    def to_reference_layout(self, component, variant, outputs):
        return parity_inputs.to_reference_layout(component, variant, outputs)

    def task_outputs(self, weights, packages, files, precision, **options):
        """The transcript of each audio file, decoded with the exported ``packages``
        (built with the build ``options``)."""
        return package_transcripts(weights, packages, files, precision, options)

    def build_options(self) -> Sequence[BuildOption]:
        return BUILD_OPTIONS

    def package_tags(self, component, variant, *, stateful=False, **options):
        """Words for decoder builds whose outputs or inputs differ from the default's:
        ``onelogits`` (one ``logits`` tensor), ``noalign`` / ``heads-HASH`` (no or other
        alignment heads), ``crosskv`` (a stateful decoder keeping the cross K/V as state),
        ``hostembed`` (it takes the token's embedding row, not its id)."""
        if component != "decoder":
            return ()
        tags = []
        if options.get(LOGITS_OPTION.name, LOGITS_OPTION.default) == "single":
            tags.append("onelogits")
        heads = options.get(ALIGNMENT_HEADS_OPTION.name, ALIGNMENT_HEADS_OPTION.default)
        if heads != ALIGNMENT_HEADS_OPTION.default:
            text = format_alignment_heads(heads)
            tags.append(
                f"heads-{hashlib.sha256(text.encode()).hexdigest()[:6]}" if heads else "noalign"
            )
        if stateful and options.get(CROSS_KV_OPTION.name) == "state":
            tags.append("crosskv")
        if embeds_on_host(options):
            tags.append("hostembed")
        return tuple(tags)

    def package_items(
        self,
        component: str,
        variant: str,
        weights: Any,
        precision: Precision,
        **options: Any,
    ) -> Sequence[PackageItem]:
        """With ``--embedding host`` the decoder package ships the token embedding table
        (``Data/ane/token_embedding.npy``, in the export's precision) that the app indexes
        (see :mod:`whisper_ane.export.host_embedding`)."""
        if component != "decoder" or not embeds_on_host(options):
            return ()
        return [table_item(weights, precision, variant)]

    def build(self, component: str, variant: str, weights: Any, **options: Any) -> ExportableModel:
        return build_component(component, variant, weights, **options)

    def layouts(self) -> Sequence[Layout]:
        """``native``, ``whispercpp`` (whisper.cpp's Core ML encoder) and ``whisperkit``
        (WhisperKit's model folder); see :mod:`whisper_ane.export.layouts`."""
        return layouts()

    def layout_plan(self, layout, *, size, name, checkpoint, **options) -> LayoutPlan:
        return layout_plan(layout, size=size, name=name, checkpoint=checkpoint, **options)

    def layout_parity_inputs(self, layout, package, weights, files=(), **options):
        return layout_parity_inputs(layout, package, weights, files)

    @property
    def transcribe_backends(self) -> tuple[str, ...]:
        """``ane transcribe --backend`` choices."""
        return BACKENDS

    def check_transcription(self, **settings: Any) -> None:
        """Refusals ``ane transcribe`` can give before loading weights (see
        :func:`~whisper_ane.runtime.transcription.check_transcription`)."""
        check_transcription(**settings)

    def transcriber(
        self,
        weights: LoadedWeights,
        *,
        backend: str,
        precision: Any = None,
        build_options: dict[str, Any] | None = None,
        layout: str = "native",
        size: str | None = None,
    ):
        """A function of one audio path (and whisper's transcribe options) returning text,
        segments (words too, with word timestamps), timings and the files written
        (``layout`` ``whisperkit``: decoded by an exported WhisperKit folder, as WhisperKit
        drives it)."""
        return make_transcriber(
            self,
            weights,
            backend=backend,
            precision=precision,
            build_options=build_options,
            layout=layout,
            size=size,
        )

    def evaluate(
        self,
        dataset: str,
        *,
        variants: Sequence[str],
        output_dir: str,
        size: str | None = None,
        checkpoint: str | None = None,
        seed: int = 0,
        jobs: int = 1,
        build_options: dict[str, Any] | None = None,
        language: str | None = None,
        transcripts: str | None = None,
        min_words: int = 1,
        limit: int | None = None,
        remove_diacritics: bool = False,
        progress: Any = None,
        note: Any = None,
    ) -> dict[str, Any]:
        """``ane eval whisper``: WER of ``variants`` (``BACKEND:PRECISION:COMPRESSION:LAYOUT``)
        beside stock openai-whisper on ``dataset`` (``asterisk:LANG``, a folder, a TSV; see
        :mod:`whisper_ane.evaluation`); the report, with its plain-text ``table``.
        ``remove_diacritics``: score without accents (``asterisk:es`` does by itself)."""
        chosen = select(
            open_dataset(dataset, language=language, transcripts=transcripts),
            min_words=min_words,
            limit=limit,
        )
        if remove_diacritics:
            chosen = replace(chosen, remove_diacritics=True)
        report = evaluate_variants(
            self,
            chosen,
            variants,
            output_dir=output_dir,
            size=size or self.default_size(),
            checkpoint=checkpoint,
            seed=seed,
            jobs=jobs,
            build_options=build_options,
            progress=progress,
            note=note,
        )
        return {**report, "table": text_table(report)}
