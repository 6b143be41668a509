"""The ``bert`` architecture: what the plugin registers with ane-core.

Sizes come from the checkpoint (``--checkpoint DIR``, a Hugging Face model directory), so
:meth:`BertArchitecture.sizes` is empty and ``--size`` is refused. The sequence length is a
build option (``--seq-len``, default 128) because ANE programs have fixed shapes. So is
``--token-input embeddings|ids`` (default ``embeddings``): whether the caller looks token ids
up in the word-embedding table shipped inside the package (no ``gather`` in the program, see
:mod:`bert_ane.lookup`) or the program does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from ane_core.architecture import Architecture, ExportableModel, ParityCase, TensorSpec
from ane_core.build_options import BuildOption
from ane_core.errors import UsageError
from ane_core.layers import to_sequence_first
from ane_core.package_items import PackageItem
from ane_core.targets import Precision
from torch import nn

from bert_ane.checkpoint import BertCheckpoint, load_checkpoint
from bert_ane.encoder import BertEncoderANE, SentenceEncoder
from bert_ane.inputs import (
    SAMPLE_SENTENCES,
    example_inputs,
    has_tokenizer,
    read_sentences,
    tokenize,
)
from bert_ane.lookup import INDEXING, TABLE_ITEM, TOKEN_INPUTS, model_inputs, table_item
from bert_ane.pooling import pooling_module
from bert_ane.state import ane_state_dict
from bert_ane.stock import StockEncoder, load_stock_model

DEFAULT_SEQ_LEN = 128
SEQ_LEN_OPTION = BuildOption(
    "seq_len",
    int,
    DEFAULT_SEQ_LEN,
    "tokens per input; shorter inputs are padded (ANE programs have fixed shapes)",
)

TOKEN_INPUT_OPTION = BuildOption(
    "token_input",
    str,
    "embeddings",
    "embeddings: the app looks token ids up in the table shipped in the package and passes "
    "the rows (no gather on the ANE); ids: the model takes token ids (one gather)",
    choices=TOKEN_INPUTS,
)


@dataclass(frozen=True)
class BertOptions:
    """The ``bert`` build options, checked."""

    seq_len: int = DEFAULT_SEQ_LEN
    token_input: str = "embeddings"


def check_seq_len(weights: BertCheckpoint, seq_len: int) -> None:
    limit = weights.shape.usable_positions
    if not 1 <= seq_len <= limit:
        raise UsageError(
            f"--seq-len {seq_len} is outside 1..{limit}, the positions this checkpoint has.",
            f"Use a --seq-len from 1 to {limit}.",
        )


def build_encoder_module(variant: str, weights: BertCheckpoint, options: BertOptions) -> nn.Module:
    """The ANE encoder with the checkpoint's weights, or transformers' own model (stock)."""
    seq_len, token_input = options.seq_len, options.token_input
    if variant == "stock":
        model = load_stock_model(weights.directory, weights.shape.family)
        return StockEncoder(model, weights.shape, seq_len, token_input).eval()
    module = BertEncoderANE(weights.shape, seq_len, token_input)
    state = ane_state_dict(weights.state_dict, weights.shape, seq_len, token_input)
    module.load_state_dict(state, strict=True, assign=True)
    return module.eval()


def _input_specs(variant: str, hidden: int, options: BertOptions) -> list[TensorSpec]:
    seq_len = options.seq_len
    shape = (1, seq_len)
    if options.token_input == "ids":
        tokens = TensorSpec(
            "input_ids",
            shape,
            f"token ids from the checkpoint's tokenizer, right-padded to {seq_len}, {shape}",
            kind="int",
        )
    else:
        layout = (1, hidden, 1, seq_len) if variant == "ane" else (1, seq_len, hidden)
        tokens = TensorSpec(
            "token_embeddings",
            layout,
            f"rows of the word-embedding table Data/ane/{TABLE_ITEM} for the tokenizer's ids "
            f"right-padded to {seq_len}: {INDEXING[variant]}, {layout}",
        )
    mask = TensorSpec(
        "attention_mask",
        shape,
        f"1.0 for real tokens, 0.0 for padding (float, so no cast is needed), {shape}",
    )
    return [tokens, mask]


def _metadata(weights: BertCheckpoint, options: BertOptions) -> dict[str, str]:
    return {
        **weights.shape.as_metadata(),
        "seq_len": str(options.seq_len),
        "token_input": options.token_input,
        "pooling": weights.pooling.describe(),
    }


def _example_inputs(
    variant: str, weights: BertCheckpoint, options: BertOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    ids, mask = example_inputs(weights.shape, options.seq_len)
    return model_inputs(
        weights.shape,
        weights.state_dict,
        ids,
        mask,
        variant=variant,
        token_input=options.token_input,
    )


def build_encoder(variant: str, weights: BertCheckpoint, options: BertOptions) -> ExportableModel:
    """Per-token states: ANE layout ``(1, C, 1, S)``, stock ``(1, S, C)``."""
    c, seq_len = weights.shape.hidden_size, options.seq_len
    if variant == "ane":
        out_shape: tuple[int, ...] = (1, c, 1, seq_len)
        layout = "channels-first (batch, channels, 1, tokens)"
    else:
        out_shape = (1, seq_len, c)
        layout = "sequence-first (batch, tokens, channels)"
    return ExportableModel(
        module=build_encoder_module(variant, weights, options),
        inputs=_input_specs(variant, c, options),
        outputs=[
            TensorSpec("last_hidden_state", out_shape, f"token states, {layout}, {out_shape}")
        ],
        example_inputs=_example_inputs(variant, weights, options),
        metadata=_metadata(weights, options),
    )


def build_embedding(variant: str, weights: BertCheckpoint, options: BertOptions) -> ExportableModel:
    """One sentence vector ``(1, C)``: the encoder plus the checkpoint's pooling."""
    c = weights.shape.hidden_size
    encoder = build_encoder_module(variant, weights, options)
    module = SentenceEncoder(encoder, pooling_module(weights.pooling, ane=variant == "ane"))
    return ExportableModel(
        module=module.eval(),
        inputs=_input_specs(variant, c, options),
        outputs=[
            TensorSpec(
                "sentence_embedding",
                (1, c),
                f"sentence embedding ({weights.pooling.describe()} pooling), (1, {c})",
            )
        ],
        example_inputs=_example_inputs(variant, weights, options),
        metadata=_metadata(weights, options),
    )


class BertArchitecture(Architecture):
    """BERT-family encoders from Hugging Face checkpoints: per-token states and sentence
    embeddings, stock and ANE-optimised."""

    name = "bert"
    description = (
        "BERT-family sentence encoders (bert, distilbert, roberta; e.g. all-MiniLM-L6-v2) "
        "from a Hugging Face checkpoint directory"
    )
    metadata_packages = ("bert-ane", "transformers")

    _builders: dict[str, Callable[[str, BertCheckpoint, BertOptions], ExportableModel]] = {
        "encoder": build_encoder,
        "embedding": build_embedding,
    }

    def sizes(self) -> Sequence[str]:
        return ()

    def components(self) -> Sequence[str]:
        return tuple(self._builders)

    def build_options(self) -> Sequence[BuildOption]:
        return (SEQ_LEN_OPTION, TOKEN_INPUT_OPTION)

    def load_weights(
        self, size: str | None, checkpoint: str | None, seed: int = 0
    ) -> BertCheckpoint:
        if size is not None:
            raise UsageError(
                f"bert takes its dimensions from the checkpoint, not --size {size}.",
                "Drop --size and pass --checkpoint DIR.",
            )
        return load_checkpoint(checkpoint)

    def _options(self, weights: BertCheckpoint, options: dict[str, Any]) -> BertOptions:
        unknown = set(options) - {SEQ_LEN_OPTION.name, TOKEN_INPUT_OPTION.name}
        if unknown:
            raise UsageError(f"bert has no build option {', '.join(sorted(unknown))}.")
        seq_len = int(options.get(SEQ_LEN_OPTION.name, DEFAULT_SEQ_LEN))
        check_seq_len(weights, seq_len)
        token_input = str(options.get(TOKEN_INPUT_OPTION.name, TOKEN_INPUT_OPTION.default))
        if token_input not in TOKEN_INPUTS:
            raise UsageError(
                f"bert --token-input got {token_input!r}.",
                f"Use one of: {', '.join(TOKEN_INPUTS)}.",
            )
        return BertOptions(seq_len=seq_len, token_input=token_input)

    def parity_inputs(
        self,
        component: str,
        variant: str,
        weights: Any,
        files: Sequence[str] = (),
        **options: Any,
    ) -> list[ParityCase]:
        """Real sentences, tokenized by the checkpoint's tokenizer: one case per line of each
        ``--input`` text file, or three built-in sentences. A checkpoint without a tokenizer
        (a random test model) gets the deterministic example inputs. Both variants take the
        same data: the same ids, or (default) the same rows of the checkpoint's word-embedding
        table, each in its variant's layout (:func:`bert_ane.lookup.embed_tokens`;
        the FP16 package gets them rounded to float16, exactly its own table's rows)."""
        built = self._options(weights, options)
        seq_len = built.seq_len
        if not has_tokenizer(weights.directory):
            if files:
                raise UsageError(
                    f"{weights.directory} has no tokenizer, so --input text cannot be tokenized.",
                    "Use a checkpoint directory that includes its tokenizer files.",
                )
            return [ParityCase("example", _example_inputs(variant, weights, built))]
        named = [pair for path in files for pair in read_sentences(path)]
        if files and not named:
            raise UsageError("the --input files hold no text.", "Give one sentence per line.")
        named = named or [(f"sample{i + 1}", text) for i, text in enumerate(SAMPLE_SENTENCES)]
        ids, mask = tokenize(weights.directory, [text for _, text in named], seq_len)
        return [
            ParityCase(
                name,
                model_inputs(
                    weights.shape,
                    weights.state_dict,
                    ids[i : i + 1],
                    mask[i : i + 1],
                    variant=variant,
                    token_input=built.token_input,
                ),
            )
            for i, (name, _) in enumerate(named)
        ]

    def package_items(
        self,
        component: str,
        variant: str,
        weights: Any,
        precision: Precision,
        **options: Any,
    ) -> Sequence[PackageItem]:
        """With ``--token-input embeddings`` the word-embedding table ``(vocab, C)``, in the
        export's precision, so the package is usable on its own (the app does the lookup)."""
        if self._options(weights, options).token_input == "ids":
            return ()
        return [table_item(weights.state_dict, precision, variant)]

    def to_reference_layout(
        self, component: str, variant: str, outputs: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, ...]:
        """The ANE encoder's ``(1, C, 1, S)`` states as the stock ``(1, S, C)``."""
        if component == "encoder" and variant == "ane":
            return tuple(to_sequence_first(out) for out in outputs)
        return tuple(outputs)

    def build(self, component: str, variant: str, weights: Any, **options: Any) -> ExportableModel:
        builder = self._builders.get(component)
        if builder is None:
            raise UsageError(
                f"bert has no component {component!r}.",
                f"Use one of: {', '.join(self._builders)}.",
            )
        if variant not in self.variants:
            raise UsageError(
                f"bert has no --arch {variant!r}.", f"Use one of: {', '.join(self.variants)}."
            )
        return builder(variant, weights, self._options(weights, options))
