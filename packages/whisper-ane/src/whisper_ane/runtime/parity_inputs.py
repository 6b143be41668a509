"""What ``ane parity whisper`` feeds each component, and how ANE outputs line up with stock.

Real inputs from audio files (``--audio``): each file's first 30 s window as whisper computes
its log-mel. The encoder takes that mel; ``cross_kv`` takes the stock encoder's features of
it; the decoder takes one real decoding step: the caches filled by the stock decoder over
whisper's start-of-transcript prompt and the first greedy tokens, and the next one. The ANE
variant gets exactly the same numbers in its channels-first layout, so any difference is
the variant's (or its export's), not the input's. With no file, a deterministic mel-like
window stands in (case ``example``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from ane_core.architecture import ParityCase
from ane_core.targets import Precision

from whisper_ane.export.components import build_component
from whisper_ane.export.encoder import example_mel
from whisper_ane.export.host_embedding import embedding_row, embedding_table, row_shape
from whisper_ane.runtime.backends import ComponentRunner, TorchRunner
from whisper_ane.runtime.decoding import load_mel
from whisper_ane.runtime.session import DecoderSession
from whisper_ane.weights.source import LoadedWeights
from whisper_ane.weights.vocabulary import tokenizer_for


def mels(weights: LoadedWeights, files: Sequence[str]) -> list[tuple[str, torch.Tensor]]:
    """``(name, (1, n_mels, 3000) mel)`` per audio file, or the example window."""
    n_mels = weights.dims.n_mels
    if not files:
        return [("example", example_mel(n_mels, channels_first=False))]
    return [(Path(f).name, load_mel(str(f), n_mels)[None]) for f in files]


def _channels_first(x: torch.Tensor) -> torch.Tensor:
    """Sequence-first ``(B, S, C)`` to the ANE's ``(B, C, 1, S)``."""
    return x.transpose(1, 2)[:, :, None, :].contiguous()


def _sequence_first(x: torch.Tensor) -> torch.Tensor:
    """The ANE's ``(B, C, 1, S)`` to sequence-first ``(B, S, C)``."""
    return x[:, :, 0, :].transpose(1, 2)


def stock_runner(component: str, weights: LoadedWeights) -> TorchRunner:
    return TorchRunner(build_component(component, "stock", weights), Precision.FP32)


class _Recorder(ComponentRunner):
    """Runs a decoder and keeps a copy of the inputs of its last call."""

    def __init__(self, runner: ComponentRunner) -> None:
        self.runner = runner
        self.inputs, self.outputs = runner.inputs, runner.outputs
        self.float_dtype = runner.float_dtype
        self.last: dict[str, np.ndarray] = {}

    def __call__(self, inputs: Mapping[str, np.ndarray], state=None) -> dict[str, np.ndarray]:
        self.last = {name: np.array(value, copy=True) for name, value in inputs.items()}
        return self.runner(inputs, state=state)


def _prompt(weights: LoadedWeights) -> tuple[int, ...]:
    tokenizer = tokenizer_for(weights.dims.n_vocab, language="en", task="transcribe")
    return tuple(tokenizer.sot_sequence_including_notimestamps)


GREEDY_STEPS = 8
"""Tokens the stock decoder picks after the prompt before the compared step, so the cache
holds real text positions, not only the prompt."""


def decoder_step(weights: LoadedWeights, features: torch.Tensor) -> dict[str, np.ndarray]:
    """Inputs (by the native decoder's names, stock layout) of a real stock decoding step: the prompt, then greedy tokens; the inputs of
    the last step (caches filled by the stock decoder) are the case."""
    cross = stock_runner("cross_kv", weights)({"encoder_output": features.numpy()})
    recorder = _Recorder(stock_runner("decoder", weights))
    session = DecoderSession(recorder, cross)
    for token in _prompt(weights):
        logits = session.step(token)
    for _ in range(GREEDY_STEPS):
        logits = session.step(int(np.argmax(logits)))
    return recorder.last


_DECODER_INPUTS = (
    "token",
    "key_cache",
    "value_cache",
    "kv_cache_update_mask",
    "key_padding_mask",
    "cross_k",
    "cross_v",
)
_CHANNELS_FIRST_INPUTS = {"key_cache", "value_cache", "cross_k", "cross_v"}


def parity_inputs(
    component: str,
    variant: str,
    weights: LoadedWeights,
    files: Sequence[str] = (),
    *,
    host_embedding: bool = False,
) -> list[ParityCase]:
    """One case per audio file (see the module docstring), in ``variant``'s layout;
    ``host_embedding``: the decoder takes the step's token as its embedding row (float32,
    from the checkpoint), as a decoder built with ``--embedding host`` does."""
    ane = variant == "ane"
    table = embedding_table(weights, np.float32) if host_embedding else None
    cases = []
    for name, mel in mels(weights, files):
        if component == "encoder":
            cases.append(ParityCase(name, (mel[:, :, None, :] if ane else mel,)))
            continue
        features = torch.from_numpy(
            stock_runner("encoder", weights)({"mel": mel.numpy()})["encoder_output"]
        )
        if component == "cross_kv":
            cases.append(ParityCase(name, (_channels_first(features) if ane else features,)))
            continue
        step = decoder_step(weights, features)
        tensors = []
        for input_name in _DECODER_INPUTS:
            tensor = torch.from_numpy(step[input_name])
            if ane and input_name in _CHANNELS_FIRST_INPUTS:
                tensor = _channels_first(tensor)
            if input_name == "token" and table is not None:
                shape = row_shape(variant, table.shape[1])
                tensor = torch.from_numpy(embedding_row(table, int(step["token"][0]), shape))
            tensors.append(tensor)
        position = int(np.argmax(step["kv_cache_update_mask"]))
        cases.append(ParityCase(f"{name}@{position}", tuple(tensors)))
    return cases


def to_reference_layout(
    component: str, variant: str, outputs: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, ...]:
    """ANE outputs as stock's: ``(B, C, 1, S)`` to ``(B, S, C)``; the decoder's logit chunks
    ``(1, n, 1, 1)`` joined into one ``(1, 1, n_vocab)``; its alignment weights
    ``(1, H_a, 1, n_audio_ctx)``, the same in both variants, as they are."""
    if variant != "ane":
        return tuple(outputs)
    if component == "decoder":
        outputs = list(outputs)
        # The alignment weights come last when built in; they alone span the audio frames.
        alignment = [outputs.pop()] if outputs[-1].shape[-1] > 1 else []
        *logits, key_update, value_update = outputs
        joined = torch.cat([chunk.reshape(1, 1, -1) for chunk in logits], dim=-1)
        return joined, _sequence_first(key_update), _sequence_first(value_update), *alignment
    return tuple(_sequence_first(output) for output in outputs)
