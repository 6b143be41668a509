"""The ANE encoder computes what transformers' own models compute (PyTorch, float32)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from ane_core.layers import to_sequence_first
from ane_core.metrics import psnr
from bert_testing import SENTENCES, TINY, inputs_for, padded_inputs

from bert_ane.architecture import BertArchitecture
from bert_ane.checkpoint import load_checkpoint
from bert_ane.inputs import tokenize
from bert_ane.pooling import reference_pooling

SEQ_LEN = 128


def plain_transformers(directory, family: str):
    """transformers loading the directory the ordinary way (its own mask handling, int mask,
    its own position ids): an oracle independent of bert_ane.stock."""
    import transformers

    cls = {
        "bert": transformers.BertModel,
        "roberta": transformers.RobertaModel,
        "distilbert": transformers.DistilBertModel,
    }[family]
    return cls.from_pretrained(str(directory), attn_implementation="eager").eval()


@pytest.fixture(scope="module")
def minilm_outputs(minilm, minilm_path):
    """Per sentence: (transformers last_hidden_state, ANE states as (1, S, C), ANE embedding)."""
    arch = BertArchitecture()
    encoder = arch.build("encoder", "ane", minilm, seq_len=SEQ_LEN).module
    embedding = arch.build("embedding", "ane", minilm, seq_len=SEQ_LEN).module
    oracle = plain_transformers(minilm_path, "bert")
    ids, mask = tokenize(minilm_path, SENTENCES, SEQ_LEN)
    results = []
    with torch.no_grad():
        for i in range(len(SENTENCES)):
            one_ids, one_mask = ids[i : i + 1], mask[i : i + 1]
            want = oracle(input_ids=one_ids.long(), attention_mask=one_mask.long())
            inputs = inputs_for(minilm, one_ids, one_mask)
            got = to_sequence_first(encoder(*inputs))
            results.append((want.last_hidden_state, got, embedding(*inputs), one_mask))
    return results


def test_minilm_last_hidden_state_matches_transformers(minilm_outputs):
    for want, got, _, _ in minilm_outputs:
        assert got.shape == want.shape == (1, SEQ_LEN, 384)
        assert psnr(want, got) >= 90.0


def test_minilm_sentence_embedding_matches_sentence_transformers_pooling(minilm, minilm_outputs):
    for want, _, embedding, mask in minilm_outputs:
        reference = reference_pooling(want, mask, minilm.pooling)  # mean + L2, from the files
        assert embedding.shape == (1, 384)
        assert F.cosine_similarity(embedding, reference).item() >= 0.999
        assert embedding.norm().item() == pytest.approx(1.0, abs=1e-5)


def test_minilm_embeddings_rank_a_paraphrase_above_an_unrelated_sentence(minilm_outputs):
    guitar, paraphrase, market = (out[2] for out in minilm_outputs[:3])
    assert F.cosine_similarity(guitar, paraphrase) > F.cosine_similarity(guitar, market) + 0.3


@pytest.mark.parametrize("token_input", ["embeddings", "ids"])
def test_stock_build_is_transformers_own_model(minilm, minilm_path, token_input):
    arch = BertArchitecture()
    stock = arch.build("encoder", "stock", minilm, seq_len=32, token_input=token_input).module
    oracle = plain_transformers(minilm_path, "bert")
    ids, mask = tokenize(minilm_path, SENTENCES[:1], 32)
    with torch.no_grad():
        want = oracle(input_ids=ids.long(), attention_mask=mask.long()).last_hidden_state
        got = stock(*inputs_for(minilm, ids, mask, "stock", token_input))
        assert psnr(want, got) >= 120.0


@pytest.mark.parametrize("family", ["bert", "distilbert", "roberta"])
@pytest.mark.parametrize("seq_len", [16, 40])
@pytest.mark.parametrize("token_input", ["embeddings", "ids"])
def test_random_checkpoints_of_every_family_match_transformers(
    random_checkpoints, family, seq_len, token_input
):
    """Both variants, both token inputs, against transformers fed the ids the ordinary way
    (RoBERTa: its own position ids from the ids, which the embeddings builds take from the
    mask)."""
    directory = random_checkpoints[family]
    weights = load_checkpoint(directory)
    arch = BertArchitecture()
    pad = weights.shape.padding_position or 0  # RoBERTa pads with id 1 and numbers positions
    ids, mask = padded_inputs(seq_len, real=seq_len - 5, vocab_size=TINY["vocab_size"], pad_id=pad)
    oracle = plain_transformers(directory, family)
    with torch.no_grad():
        want = oracle(input_ids=ids.long(), attention_mask=mask.long()).last_hidden_state
        for variant, floor in (("ane", 90.0), ("stock", 120.0)):
            options = {"seq_len": seq_len, "token_input": token_input}
            module = arch.build("encoder", variant, weights, **options).module
            got = module(*inputs_for(weights, ids, mask, variant, token_input))
            got = to_sequence_first(got) if variant == "ane" else got
            assert psnr(want, got) >= floor, variant


def test_padding_does_not_change_real_token_states(minilm, minilm_path):
    """The mask input works: the same sentence at two padded lengths gives the same states."""
    arch = BertArchitecture()
    ids16, mask16 = tokenize(minilm_path, SENTENCES[:1], 16)
    ids48, mask48 = tokenize(minilm_path, SENTENCES[:1], 48)
    real = int(mask16.sum())
    with torch.no_grad():
        short = arch.build("encoder", "ane", minilm, seq_len=16).module(
            *inputs_for(minilm, ids16, mask16)
        )
        long = arch.build("encoder", "ane", minilm, seq_len=48).module(
            *inputs_for(minilm, ids48, mask48)
        )
    assert psnr(short[..., :real], long[..., :real]) >= 90.0


def test_embedding_input_is_the_table_rows_in_channels_first_layout(minilm, minilm_path):
    """token_embeddings[0, :, 0, s] == table[ids[s]], for torch and numpy alike."""
    from bert_ane.lookup import embed_tokens, word_embedding_table

    table = word_embedding_table(minilm.state_dict)
    ids, _ = tokenize(minilm_path, SENTENCES[:1], 16)
    rows = embed_tokens(table, ids)
    assert rows.shape == (1, 384, 1, 16)
    for s in (0, 3, 15):
        assert torch.equal(rows[0, :, 0, s], table[ids[0, s]])
    as_numpy = embed_tokens(table.numpy().astype("float16"), ids.numpy())
    assert as_numpy.dtype.name == "float16" and as_numpy.flags["C_CONTIGUOUS"]
    assert (as_numpy == rows.numpy().astype("float16")).all()
    stock = embed_tokens(table, ids, channels_first=False)
    assert stock.shape == (1, 16, 384) and torch.equal(stock[0, 5], table[ids[0, 5]])
