"""Drive a WhisperKit model folder the way WhisperKit's Swift code does, off a Mac.

Why: the proof that a folder drops into WhisperKit unchanged is that WhisperKit's own loop,
fed by the reference executor instead of Core ML, decodes what stock whisper decodes. So this
follows argmaxinc/WhisperKit ``Sources/WhisperKit/Core/TextDecoder.swift``
(``prepareDecoderInputs``, ``prefillDecoderInputs``, ``decodeText``, ``updateKVCache``) step
for step:

* dimensions come from the models' declared shapes, as WhisperKit reads them: embed dim and
  cache length from ``key_cache`` axes 1 and 3, vocabulary from ``logits`` axis 2;
* inputs are made as WhisperKit makes them: float32 audio, int32 ``input_ids`` and
  ``cache_length``, float16 zero caches, an int32 one-hot ``kv_cache_update_mask`` (the
  runtime converts it to the model's float16, as Core ML does) and a float16
  ``decoder_key_padding_mask`` of -10000 with position 0 open;
* the prompt ``<|startoftranscript|>`` (then language and task for a multilingual model)
  and ``<|notimestamps|>`` is fed one token per call (``input_ids`` = the token,
  ``cache_length`` = its index);
* after each call the returned ``key_cache_updates`` / ``value_cache_updates`` are copied
  into column ``cache_length`` of the caches (float16, as ``memcpy`` does), position
  ``index + 1`` of the padding mask opens and the one-hot moves to ``index + 1``.

What picks the next token is openai-whisper's: greedy argmax after whisper's own
``SuppressBlank`` and ``SuppressTokens`` filters (what ``whisper.decode`` applies without
timestamps), up to whisper's ``sample_len`` (``n_text_ctx // 2``) tokens; the language,
when not given, is whisper's choice among the language tokens at the start-of-transcript
step (``whisper.detect_language``'s rule), which WhisperKit's ``detectLanguage`` also does.
Long audio is cut into consecutive 30 s windows, each decoded on its own (no timestamps,
so no seek by segment, and no previous-text prompt).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import whisper
import whisper.decoding
from ane_core.executor import load_program
from ane_core.layers import MASK_VALUE
from ane_core.mil import load_spec

from whisper_ane.export.layouts.whisperkit import DECODER, ENCODER, MEL
from whisper_ane.weights.vocabulary import is_multilingual, suppressed_tokens, tokenizer_for

SAMPLE_RATE = whisper.audio.SAMPLE_RATE


def _shapes(package: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """Declared input and output shapes by name, read from the model description as
    WhisperKit's ``ModelUtilities.getModelInputDimension`` reads them."""
    description = load_spec(package).description

    def shapes(features: Any) -> dict[str, tuple[int, ...]]:
        return {f.name: tuple(int(n) for n in f.type.multiArrayType.shape) for f in features}

    return shapes(description.input), shapes(description.output)


@dataclass
class WindowResult:
    """One 30 s window: the prompt and the sampled tokens (without the final eot)."""

    language: str | None
    prompt: list[int]
    tokens: list[int]
    steps: int = 0
    """Decoder calls (the prompt's and each sampled token's)."""
    seconds: dict[str, float] = field(default_factory=dict)


class WhisperKitFolder:
    """The three models of a WhisperKit folder, run by ``backend`` (``mil``: the reference
    executor, any OS; ``coreml``: Core ML on macOS), driven as WhisperKit drives them."""

    def __init__(self, folder: str | Path, *, backend: str = "mil", compute_units: str = "all"):
        self.folder = Path(folder)
        paths = {name: self.folder / f"{name}.mlpackage" for name in (MEL, ENCODER, DECODER)}
        self.programs = {
            name: load_program(path, backend=backend, compute_units=compute_units)
            for name, path in paths.items()
        }
        decoder_in, decoder_out = _shapes(paths[DECODER])
        _, key_dim, _, self.kv_len = decoder_in["key_cache"]
        self.key_cache_shape = (1, key_dim, 1, self.kv_len)
        self.vocab_size = decoder_out["logits"][2]
        self.window_samples = _shapes(paths[MEL])[0]["audio"][0]
        self.multilingual = is_multilingual(self.vocab_size)  # WhisperKit's rule too
        self.tokenizer = tokenizer_for(self.vocab_size)

    def encode(self, window: np.ndarray) -> np.ndarray:
        """``(480000,)`` float32 samples to ``encoder_output_embeds`` (as returned)."""
        mel = self.programs[MEL]({"audio": window.astype(np.float32)})["melspectrogram_features"]
        return self.programs[ENCODER]({"melspectrogram_features": mel})["encoder_output_embeds"]

    def new_inputs(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """``prepareDecoderInputs``: zero caches, one-hot at 0, only position 0 open."""
        update = np.zeros((1, self.kv_len), dtype=np.int32)
        update[0, 0] = 1
        padding = np.full((1, self.kv_len), MASK_VALUE, dtype=np.float16)
        padding[0, 0] = 0
        return {
            "input_ids": np.zeros(1, dtype=np.int32),
            "cache_length": np.zeros(1, dtype=np.int32),
            "key_cache": np.zeros(self.key_cache_shape, dtype=np.float16),
            "value_cache": np.zeros(self.key_cache_shape, dtype=np.float16),
            "kv_cache_update_mask": update,
            "encoder_output_embeds": features,
            "decoder_key_padding_mask": padding,
        }

    def step(self, inputs: dict[str, np.ndarray], token: int, index: int) -> np.ndarray:
        """One ``predictLogits`` call at ``index`` and WhisperKit's updates after it;
        returns the logits ``(vocab,)`` as float32."""
        inputs["input_ids"][0] = token
        inputs["cache_length"][0] = index
        outputs = self.programs[DECODER](inputs)
        for name in ("key", "value"):  # updateKVCache: raw float16 copy into column index
            update = np.asarray(outputs[f"{name}_cache_updates"], dtype=np.float16)
            inputs[f"{name}_cache"][0, :, 0, index] = update[0, :, 0, 0]
        if index + 1 < self.kv_len:
            inputs["decoder_key_padding_mask"][0, index + 1] = 0
            inputs["kv_cache_update_mask"][0, index] = 0
            inputs["kv_cache_update_mask"][0, index + 1] = 1
        return np.asarray(outputs["logits"], dtype=np.float32).reshape(-1)

    def detect_language(self, features: np.ndarray) -> str:
        """The likeliest language token after ``<|startoftranscript|>`` (fresh caches)."""
        logits = self.step(self.new_inputs(features), self.tokenizer.sot, 0)
        languages = list(self.tokenizer.all_language_tokens)
        best = languages[int(np.argmax(logits[languages]))]
        return self.tokenizer.decode([best]).strip("<|>")

    def decode_window(
        self, window: np.ndarray, *, language: str | None = None, task: str = "transcribe"
    ) -> WindowResult:
        """Greedy decoding of one window without timestamps (see the module docstring)."""
        start = time.perf_counter()
        features = self.encode(window)
        encoded = time.perf_counter()
        if self.multilingual and language is None:
            language = self.detect_language(features)
        tokenizer = tokenizer_for(self.vocab_size, language=language, task=task)
        prompt = list(tokenizer.sot_sequence_including_notimestamps)
        filters = [
            whisper.decoding.SuppressBlank(tokenizer, len(prompt)),
            whisper.decoding.SuppressTokens(suppressed_tokens(tokenizer)),
        ]
        inputs = self.new_inputs(features)
        tokens: list[int] = []
        sample_len = self.kv_len // 2
        index = 0
        token = prompt[0]
        while index < self.kv_len - 1:
            logits = self.step(inputs, token, index)
            if index < len(prompt) - 1:  # prefill: the prompt is forced
                index += 1
                token = prompt[index]
                continue
            chosen = torch.from_numpy(logits)[None]
            sequence = torch.tensor([prompt + tokens])
            for logit_filter in filters:
                logit_filter.apply(chosen, sequence)
            token = int(chosen.argmax(-1))
            if token == tokenizer.eot or len(tokens) >= sample_len:
                break
            tokens.append(token)
            index += 1
        done = time.perf_counter()
        seconds = {"encoder_s": encoded - start, "decoder_s": done - encoded}
        return WindowResult(language, prompt, tokens, index + 1, seconds)

    def transcribe(
        self, audio: np.ndarray, *, language: str | None = None, task: str = "transcribe"
    ) -> dict[str, Any]:
        """Every 30 s window of ``audio`` (16 kHz float32): text, language, segments."""
        segments, texts, detected = [], [], language
        for number, begin in enumerate(range(0, max(len(audio), 1), self.window_samples)):
            window = whisper.pad_or_trim(audio[begin : begin + self.window_samples])
            result = self.decode_window(window, language=detected, task=task)
            detected = detected or result.language
            text = self.tokenizer.decode(result.tokens)
            texts.append(text)
            segments.append(
                {
                    "id": number,
                    "seek": begin // whisper.audio.HOP_LENGTH,
                    "start": begin / SAMPLE_RATE,
                    "end": min(len(audio), begin + self.window_samples) / SAMPLE_RATE,
                    "text": text,
                    "tokens": result.tokens,
                    "decoder_steps": result.steps,
                    **{name: round(value, 4) for name, value in result.seconds.items()},
                }
            )
        return {"language": detected or "en", "text": "".join(texts), "segments": segments}
