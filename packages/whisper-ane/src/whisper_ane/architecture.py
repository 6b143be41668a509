"""The ``whisper`` architecture: what the plugin registers with ane-core."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import whisper.model
from ane_core.architecture import Architecture, ExportableModel, TensorSpec
from ane_core.build_options import BuildOption
from ane_core.errors import UsageError

from whisper_ane import bench, parity
from whisper_ane.audio_files import check_audio_files
from whisper_ane.decoder_export import TRACE_FRAMES, build_cross_kv, build_decoder
from whisper_ane.encoder import AudioEncoderANE
from whisper_ane.weights import SIZES
from whisper_ane.weights.source import LoadedWeights, load_weights

N_SAMPLES_FRAMES = 3000
"""Mel frames in one 30 s window (whisper.audio.N_FRAMES)."""


def component_state(weights: LoadedWeights, prefix: str) -> dict[str, torch.Tensor]:
    """The part of a whisper state dict under ``prefix`` (e.g. ``encoder.``), prefix removed."""
    return {k[len(prefix) :]: v for k, v in weights.state_dict.items() if k.startswith(prefix)}


def materialize(
    factory: Callable[[], torch.nn.Module], state: dict[str, torch.Tensor]
) -> torch.nn.Module:
    """Build a module on the meta device and adopt ``state``'s tensors without copying them.

    Why: a medium or large checkpoint is gigabytes; initialising random parameters and then
    copying the checkpoint into them would double peak memory and waste seconds.
    """
    with torch.device("meta"):
        module = factory()
    module.load_state_dict(state, strict=True, assign=True)
    return module.eval()


def example_mel(n_mels: int, *, channels_first: bool, seed: int = 0) -> torch.Tensor:
    """A deterministic log-mel-like tensor in Whisper's value range, for tracing."""
    generator = torch.Generator().manual_seed(seed)
    mel = torch.rand(1, n_mels, N_SAMPLES_FRAMES, generator=generator) * 2.0 - 1.0
    return mel.unsqueeze(2) if channels_first else mel


TRACE_MEL_FRAMES = 2 * TRACE_FRAMES
"""Mel frames the ANE encoder is traced from: the stride-2 conv turns them into the
:data:`~whisper_ane.decoder_export.TRACE_FRAMES` audio frames ``cross_kv`` traces from. Its
graph does not depend on the length, so a 16-frame trace gives the same program as the
3000-frame input it is converted for, in a fraction of a second instead of a full forward
pass (about 10 s for medium). Stock whisper's encoder asserts the full length, so it traces
at 3000."""


def build_encoder(variant: str, weights: LoadedWeights) -> ExportableModel:
    """Stock ``whisper.model.AudioEncoder`` or :class:`AudioEncoderANE` with the same weights."""
    d = weights.dims
    state = component_state(weights, "encoder.")
    shape_info = {
        "n_mels": str(d.n_mels),
        "n_audio_ctx": str(d.n_audio_ctx),
        "n_audio_state": str(d.n_audio_state),
        "n_audio_head": str(d.n_audio_head),
        "n_audio_layer": str(d.n_audio_layer),
    }
    if variant == "ane":
        module = materialize(
            lambda: AudioEncoderANE(
                d.n_mels, d.n_audio_ctx, d.n_audio_state, d.n_audio_head, d.n_audio_layer
            ),
            state,
        )
        mel_shape: tuple[int, ...] = (1, d.n_mels, 1, N_SAMPLES_FRAMES)
        out_shape: tuple[int, ...] = (1, d.n_audio_state, 1, d.n_audio_ctx)
        layout = "channels-first (batch, channels, 1, frames)"
    else:
        module = materialize(
            lambda: whisper.model.AudioEncoder(
                d.n_mels, d.n_audio_ctx, d.n_audio_state, d.n_audio_head, d.n_audio_layer
            ),
            state,
        )
        mel_shape = (1, d.n_mels, N_SAMPLES_FRAMES)
        out_shape = (1, d.n_audio_ctx, d.n_audio_state)
        layout = "sequence-first (batch, frames, channels)"
    example = example_mel(d.n_mels, channels_first=variant == "ane")
    return ExportableModel(
        module=module,
        inputs=[
            TensorSpec("mel", mel_shape, f"log-mel spectrogram of one 30 s window, {mel_shape}")
        ],
        outputs=[TensorSpec("encoder_output", out_shape, f"audio features, {layout}, {out_shape}")],
        example_inputs=(example,),
        metadata=shape_info,
        trace_inputs=(example[..., :TRACE_MEL_FRAMES],) if variant == "ane" else None,
    )


LOGITS_OPTION = BuildOption(
    name="logits",
    default="chunked",
    choices=("chunked", "single"),
    help="Decoder logits as chunks logits_0..N, each under the ANE's 16384 limit on one "
    "dimension (default), or as one logits tensor (same values).",
)


class WhisperArchitecture(Architecture):
    """OpenAI Whisper: stock and ANE-optimised audio encoder (the decoder follows)."""

    name = "whisper"
    description = "OpenAI Whisper speech recognition"
    metadata_packages = ("whisper-ane", "openai-whisper")

    _builders: dict[str, Callable[..., ExportableModel]] = {
        "encoder": build_encoder,
        "cross_kv": build_cross_kv,
        "decoder": build_decoder,
    }

    def sizes(self) -> Sequence[str]:
        return SIZES

    def components(self) -> Sequence[str]:
        return tuple(self._builders)

    def stateful_components(self, variant: str) -> Sequence[str]:
        """``--stateful``: the ANE decoder keeps its self-attention cache as Core ML state."""
        return ("decoder",) if variant == "ane" else ()

    def load_weights(
        self, size: str | None, checkpoint: str | None, seed: int = 0
    ) -> LoadedWeights:
        return load_weights(size, checkpoint, seed=seed)  # size None: dims from the checkpoint

    def release_weights(self, weights: LoadedWeights, remaining: Sequence[str]) -> None:
        """Free ``encoder.*`` once no encoder is left to export, ``decoder.*`` once neither
        cross_kv nor decoder is (a medium encoder is 1.2 GB of float32)."""
        for prefix, users in (("encoder.", {"encoder"}), ("decoder.", {"cross_kv", "decoder"})):
            if not users & set(remaining):
                for name in [n for n in weights.state_dict if n.startswith(prefix)]:
                    del weights.state_dict[name]

    def latency_cases(self, component, variant, weights, **options):
        return bench.latency_cases(self, component, variant, weights, **options)

    def check_input_files(self, files: Sequence[str]) -> None:
        """Input files are audio: they must decode and hold sound."""
        super().check_input_files(files)
        check_audio_files(files)

    def parity_inputs(self, component, variant, weights, files=(), **options):
        return parity.parity_inputs(component, variant, weights, files)

    def to_reference_layout(self, component, variant, outputs):
        return parity.to_reference_layout(component, variant, outputs)

    def task_outputs(self, weights, packages, files, precision):
        """The transcript of each audio file, decoded with the exported ``packages``."""
        from whisper_ane.package_transcripts import package_transcripts

        return package_transcripts(weights, packages, files, precision)

    def build_options(self) -> Sequence[BuildOption]:
        return (LOGITS_OPTION,)

    def build(self, component: str, variant: str, weights: Any, **options: Any) -> ExportableModel:
        builder = self._builders.get(component)
        if builder is None:
            raise UsageError(
                f"whisper has no component {component!r}.",
                f"Use one of: {', '.join(self._builders)}.",
            )
        logits = options.pop(LOGITS_OPTION.name, LOGITS_OPTION.default)
        if component == "decoder":
            options["split_logits"] = logits == "chunked"
        return builder(variant, weights, **options)

    @property
    def transcribe_backends(self) -> tuple[str, ...]:
        """``ane transcribe --backend`` choices."""
        from whisper_ane.transcription import BACKENDS

        return BACKENDS

    def transcriber(self, weights: LoadedWeights, *, backend: str, precision: Any):
        """A function of one audio path returning text, segments and timings."""
        from whisper_ane.transcription import make_transcriber

        return make_transcriber(weights, backend=backend, precision=precision)
