"""The one entry point for Whisper weights: pick the source, load, check against ``--size``.

Why: every exporter needs the same thing, an openai-whisper state dict plus its
dimensions and provenance, whatever the weights came as. Dimensions always come from the
checkpoint itself; the size table only supplies random weights and the check that the
checkpoint is the size that was asked for, so a mix-up fails early with a clear message
instead of as a shape error deep inside an export.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import gzip
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import whisper
import whisper.model
from ane_core.errors import UsageError, WeightsError
from ane_core.file_checks import file_sha256, files_sha256, refuse_lfs_pointer
from whisper.model import ModelDimensions

from whisper_ane.weights.ctranslate2 import Ct2Checkpoint
from whisper_ane.weights.dims_check import check_dims, check_dims_match_tensors
from whisper_ane.weights.download import fetch_checkpoint
from whisper_ane.weights.huggingface import (
    is_huggingface_dir,
    load_huggingface_state,
    read_alignment_heads,
    read_dims,
)
from whisper_ane.weights.lazy import tensor_shape
from whisper_ane.weights.openai_checkpoint import load_openai_checkpoint
from whisper_ane.weights.random_init import (
    DIMENSIONS,
    dims_for,
    expected_shapes,
    meta_whisper,
    random_state_dict,
)


@dataclass
class LoadedWeights:
    """Weights in openai-whisper names, with where they came from (for model metadata)."""

    dims: ModelDimensions
    state_dict: MutableMapping[str, torch.Tensor]
    """openai-whisper names (as in ``Whisper(dims).state_dict()``), float32 tensors; for
    random weights and CTranslate2 directories a :class:`~whisper_ane.weights.lazy.
    LazyStateDict` that reads each tensor when first asked for."""
    source: str
    """Human description: ``ctranslate2:/dir``, ``openai:/path/x.pt`` or ``random(seed=0)``."""
    checkpoint_path: str | None
    """The file the weights came from (the directory for a split CTranslate2 model.bin)."""
    sha256: str | None
    """SHA-256 of that file (of the parts' concatenation for a split model.bin)."""
    alignment_heads: tuple[tuple[int, int], ...] | None = None
    """Cross-attention (layer, head) pairs for word timestamps: the source's own list (a
    CTranslate2 ``config.json``, a Hugging Face ``generation_config.json``), else whisper's
    table for the ``--size`` asked (openai-whisper's ``_ALIGNMENT_HEADS``); ``None`` when
    neither names them (see :mod:`whisper_ane.export.alignment_heads` for the fallback)."""
    source_dir: str | None = None
    """The CTranslate2 or Hugging Face directory the weights came from (``None`` for a
    ``.pt`` file, the download or random weights): where files that ship beside the
    weights, such as ``tokenizer.json``, are found."""


def load_weights(
    size: str | None, checkpoint: str | None, *, seed: int = 0, download_root: str | None = None
) -> LoadedWeights:
    """Load the weights for ``size`` from ``checkpoint``.

    ``checkpoint`` is None (openai-whisper's cache, downloading if needed), ``"random"`` or
    ``"random:SEED"`` (seeded random weights; ``seed`` otherwise), a ``.pt`` file (openai
    checkpoint) or a directory (a transformers Whisper model when its config.json says
    ``"model_type": "whisper"``, else a CTranslate2 model). ``size`` None takes the
    dimensions from a checkpoint file or directory unchecked (distil-whisper and other
    shapes no size name describes); random weights and the download need a size.
    ``download_root``: where the download is cached (default: openai-whisper's cache).
    """
    is_random = checkpoint is not None and (
        checkpoint == "random" or checkpoint.startswith("random:")
    )
    if size is None and (checkpoint is None or is_random):
        raise UsageError(
            "whisper needs --size for random or downloaded weights.",
            f"Use one of: {', '.join(DIMENSIONS)}.",
        )
    if size is not None:
        dims_for(size)  # an unknown name fails before any file is read
    if is_random:
        table_dims = dims_for(size)
        seed = _parse_seed(checkpoint, seed)
        state = random_state_dict(table_dims, seed)
        heads = _official_alignment_heads(size, table_dims)
        return LoadedWeights(table_dims, state, f"random(seed={seed})", None, None, heads)
    if checkpoint is None:
        assert size is not None  # refused above
        path, sha256 = fetch_checkpoint(size, download_root)
        dims, state = load_openai_checkpoint(path)
        check_dims(dims, path)
        check_size(size, dims, path)
        heads = _official_alignment_heads(size, dims)
        weights = LoadedWeights(dims, state, f"openai:{path}", str(path), sha256, heads)
    else:
        path = Path(checkpoint).expanduser()
        if not path.exists():
            raise WeightsError(
                f"checkpoint {path} does not exist.",
                "Pass an openai-whisper .pt file, a CTranslate2 or transformers Whisper directory, "
                "or --weights random.",
            )
        weights = _load_directory(size, path) if path.is_dir() else _load_file(size, path)
    check_state_dict(
        weights.dims, weights.state_dict, weights.checkpoint_path or checkpoint or size
    )
    if weights.alignment_heads is None and size is not None:  # the source names none
        weights.alignment_heads = _official_alignment_heads(size, weights.dims)
    return weights


def build_whisper(weights: LoadedWeights) -> whisper.model.Whisper:
    """A stock ``whisper.model.Whisper`` in eval mode holding ``weights`` (float32, strict load).

    The model adopts the state dict's tensors instead of copying them (medium and large
    fit in one copy of memory), so in-place edits of its parameters show in
    ``weights.state_dict`` too.
    """
    model = meta_whisper(weights.dims)
    model.load_state_dict(weights.state_dict, strict=True, assign=True)
    if weights.alignment_heads is not None:
        mask = alignment_mask(
            weights.alignment_heads, weights.dims.n_text_layer, weights.dims.n_text_head
        )
        model.register_buffer("alignment_heads", mask, persistent=False)
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):  # a whisper release changed
        raise RuntimeError("build_whisper left tensors on the meta device")
    return model.float().eval()


def alignment_mask(heads: tuple[tuple[int, int], ...], n_layer: int, n_head: int) -> torch.Tensor:
    """``heads`` as whisper stores them: a sparse ``(n_layer, n_head)`` boolean mask (its
    ``Whisper.alignment_heads`` buffer, whose ``indices()`` ``find_alignment`` iterates)."""
    mask = torch.zeros(n_layer, n_head, dtype=torch.bool)
    for layer, head in heads:
        mask[layer, head] = True
    return mask.to_sparse()


def check_size(size: str | None, dims: ModelDimensions, where: object) -> None:
    """Refuse a checkpoint whose dimensions are not those of ``size`` (one line: what and how).

    ``size`` None accepts any dimensions: they come from the checkpoint either way.
    """
    if size is None:
        return
    want = DIMENSIONS[size]
    if dims == want:
        return
    matches = [name for name, d in DIMENSIONS.items() if d == dims]
    known = f" ({'/'.join(matches)})" if matches else ""
    fix = (
        f"Pass --size {matches[0]} or another checkpoint."
        if matches
        else "Omit --size to take every dimension from the checkpoint, or pass another one."
    )
    if (dims.n_audio_layer, dims.n_audio_state) != (want.n_audio_layer, want.n_audio_state):
        has = f"{dims.n_audio_layer} encoder layers of width {dims.n_audio_state}"
    elif dims.n_text_layer != want.n_text_layer:
        has = f"{dims.n_text_layer} decoder layers"
    elif dims.n_mels != want.n_mels:
        has = f"{dims.n_mels} mel bins"
    elif dims.n_vocab != want.n_vocab:
        kind = "English-only" if dims.n_vocab == 51864 else "multilingual"
        has = f"a {dims.n_vocab}-token {kind} vocabulary"
    else:
        diff = {
            f.name: getattr(dims, f.name)
            for f in dataclasses.fields(dims)
            if getattr(dims, f.name) != getattr(want, f.name)
        }
        has = ", ".join(f"{k}={v}" for k, v in diff.items())
    raise WeightsError(f"checkpoint {where} has {has}{known} but --size {size} was asked.", fix)


def check_state_dict(dims: ModelDimensions, state: dict[str, torch.Tensor], where: object) -> None:
    """Names and shapes must be exactly those of ``Whisper(dims)``: fail here, not mid-export.

    The dimensions are first matched against the tensors that carry them, so the model
    skeleton built to list the expected shapes is never larger than the checkpoint justifies.
    """
    check_dims_match_tensors(dims, state, where)
    expected = expected_shapes(dims)
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        what = f"lacks {missing[0]}" if missing else f"has unexpected {extra[0]}"
        count = len(missing) + len(extra)
        raise WeightsError(
            f"checkpoint {where} {what} ({count} name(s) differ from openai-whisper's).",
            "Pass an openai-whisper checkpoint or a CTranslate2 Whisper directory.",
        )
    for name, shape in expected.items():
        if tensor_shape(state, name) != shape:
            raise WeightsError(
                f"checkpoint {where}: {name} has shape {tensor_shape(state, name)}, expected {shape}.",
                "The checkpoint is damaged or not a Whisper model; pass another one.",
            )


def _parse_seed(checkpoint: str, default: int) -> int:
    if checkpoint == "random":
        return default
    text = checkpoint.partition(":")[2]
    try:
        return int(text)
    except ValueError:
        raise UsageError(
            f"random weights need an integer seed, not {text!r}.", "Use random or random:SEED."
        ) from None


def _load_directory(size: str | None, path: Path) -> LoadedWeights:
    refuse_lfs_pointer(path / "config.json")  # it decides which reader the directory gets
    if is_huggingface_dir(path):
        return _load_huggingface(size, path)
    ct2 = Ct2Checkpoint(path)  # stays open while its lazy state dict reads tensors
    try:
        check_dims(ct2.dims, path)
        check_size(size, ct2.dims, path)  # before reading any tensor data
        heads = ct2.alignment_heads
        _check_alignment_heads(ct2.dims, heads, path / "config.json")
        return LoadedWeights(
            ct2.dims,
            ct2.lazy_state_dict(),
            f"ctranslate2:{path}",
            str(ct2.path),
            ct2.sha256(),
            heads,
            source_dir=str(path),
        )
    except BaseException:
        ct2.close()
        raise


def _check_alignment_heads(
    dims: ModelDimensions, heads: tuple[tuple[int, int], ...] | None, where: Path
) -> None:
    if heads is not None and not all(
        0 <= layer < dims.n_text_layer and 0 <= head < dims.n_text_head for layer, head in heads
    ):
        raise WeightsError(f"{where} names alignment heads outside the model.", "Restore it.")


def _load_huggingface(size: str | None, path: Path) -> LoadedWeights:
    dims = read_dims(path)
    check_dims(dims, path / "config.json")
    check_size(size, dims, path)  # before reading any tensor data
    heads = read_alignment_heads(path)
    _check_alignment_heads(dims, heads, path / "generation_config.json")
    state, files = load_huggingface_state(path, dims)
    where = files[0] if len(files) == 1 else path
    return LoadedWeights(
        dims,
        state,
        f"huggingface:{path}",
        str(where),
        files_sha256(files),
        heads,
        source_dir=str(path),
    )


def _load_file(size: str | None, path: Path) -> LoadedWeights:
    dims, state = load_openai_checkpoint(path)
    check_dims(dims, path)
    check_size(size, dims, path)
    for name in _volatile_buffers():  # some tools save these; Whisper(dims) rebuilds them
        state.pop(name, None)
    sha256 = file_sha256(path)
    return LoadedWeights(dims, state, f"openai:{path}", str(path), sha256)


@functools.cache
def _volatile_buffers() -> frozenset[str]:
    """Non-persistent buffers (causal mask, alignment heads): not part of a state dict.

    Their names do not depend on the dimensions, so a one-layer model lists them: nothing is
    built from a checkpoint's dimensions before they are matched against its tensors.
    """
    model = meta_whisper(ModelDimensions(1, 1, 2, 1, 1, 1, 1, 2, 1, 1))
    return frozenset({name for name, _ in model.named_buffers()} - set(model.state_dict()))


def _official_alignment_heads(
    size: str, dims: ModelDimensions
) -> tuple[tuple[int, int], ...] | None:
    """openai-whisper's alignment heads for an official checkpoint (as ``load_model`` sets them)."""
    dump = whisper._ALIGNMENT_HEADS.get(size)
    if dump is None:
        return None
    mask = np.frombuffer(gzip.decompress(base64.b85decode(dump)), dtype=bool)
    mask = mask.reshape(dims.n_text_layer, dims.n_text_head)
    return tuple((int(layer), int(head)) for layer, head in zip(*np.nonzero(mask), strict=True))
