"""Exported packages: cast-free FP16, only the embedding gather left for `ane inspect`, and the
programs compute what transformers computes (run by ane-core's reference executor)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ane_core.executor import load_program
from ane_core.export import export_component
from ane_core.inspect import inspect_package
from ane_core.metrics import psnr
from ane_core.targets import Precision, parse_target
from bert_testing import SENTENCES, TINY, padded_inputs

from bert_ane.architecture import BertArchitecture
from bert_ane.checkpoint import load_checkpoint
from bert_ane.inputs import tokenize


def export(weights, component, precision, out_dir, seq_len, variant="ane"):
    return export_component(
        BertArchitecture(),
        size=None,
        component=component,
        variant=variant,
        weights=weights,
        precision=precision,
        target=parse_target("macOS13", precision=precision),
        output_dir=out_dir,
        build_options={"seq_len": seq_len},
    )


def run(path, ids, mask, precision):
    program = load_program(path)
    outputs = program(
        {"input_ids": ids.numpy(), "attention_mask": mask.numpy().astype(precision.numpy_dtype)}
    )
    (value,) = outputs.values()
    return torch.from_numpy(np.asarray(value, dtype=np.float32))


def transformers_states(directory, ids, mask, family="bert"):
    import transformers

    cls = {"bert": transformers.BertModel, "distilbert": transformers.DistilBertModel}
    cls = cls.get(family, transformers.RobertaModel)
    model = cls.from_pretrained(str(directory), attn_implementation="eager").eval()
    with torch.no_grad():
        return model(input_ids=ids.long(), attention_mask=mask.long()).last_hidden_state


def as_sequence_first(states):
    return states[:, :, 0, :].transpose(1, 2)


def test_minilm_fp16_encoder_is_cast_free_and_close_to_transformers(minilm, minilm_path, tmp_path):
    seq_len = 32
    result = export(minilm, "encoder", Precision.FP16, tmp_path, seq_len)
    assert result.path.name == "bert-encoder-ane-fp16.mlpackage"
    assert result.cast_count == 0 and result.op_counts["gather"] == 1
    findings = inspect_package(result.path).to_dict()["findings"]
    # The word-embedding lookup by token id is the one op that cannot run on the ANE.
    assert [f["rule"] for f in findings] == ["gather"]
    ids, mask = tokenize(minilm_path, SENTENCES[:2], seq_len)
    for i in range(2):
        got = as_sequence_first(run(result.path, ids[i : i + 1], mask[i : i + 1], Precision.FP16))
        want = transformers_states(minilm_path, ids[i : i + 1], mask[i : i + 1])
        assert psnr(want, got) >= 35.0


@pytest.mark.parametrize("family", ["bert", "distilbert", "roberta"])
def test_random_checkpoint_packages_match_transformers(random_checkpoints, tmp_path, family):
    directory = random_checkpoints[family]
    weights = load_checkpoint(directory)
    pad = weights.shape.padding_position or 0
    ids, mask = padded_inputs(24, real=17, vocab_size=TINY["vocab_size"], pad_id=pad)
    want = transformers_states(directory, ids, mask, family)
    for precision, floor in ((Precision.FP32, 90.0), (Precision.FP16, 35.0)):
        result = export(weights, "encoder", precision, tmp_path, 24)
        assert result.cast_count == 0
        assert psnr(want, as_sequence_first(run(result.path, ids, mask, precision))) >= floor


@pytest.mark.slow
def test_minilm_packages_at_default_length_meet_the_floors(minilm, minilm_path, tmp_path):
    """The issue's figures at --seq-len 128: FP32 >= 90 dB, FP16 >= 35 dB, embeddings
    cosine >= 0.999, through the reference executor."""
    from bert_ane.pooling import reference_pooling

    seq_len = 128
    ids, mask = tokenize(minilm_path, SENTENCES, seq_len)
    packages = {
        (component, precision): export(minilm, component, precision, tmp_path, seq_len).path
        for component in ("encoder", "embedding")
        for precision in (Precision.FP32, Precision.FP16)
    }
    for i in range(len(SENTENCES)):
        one_ids, one_mask = ids[i : i + 1], mask[i : i + 1]
        want = transformers_states(minilm_path, one_ids, one_mask)
        sentence = reference_pooling(want, one_mask, minilm.pooling)
        for precision, floor in ((Precision.FP32, 90.0), (Precision.FP16, 35.0)):
            states = run(packages["encoder", precision], one_ids, one_mask, precision)
            assert psnr(want, as_sequence_first(states)) >= floor
            embedding = run(packages["embedding", precision], one_ids, one_mask, precision)
            assert F.cosine_similarity(embedding, sentence).item() >= 0.999
