"""Checkpoint directories: what loads, what is refused, and with which one-line message."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch
import transformers
from ane_core.errors import UsageError, WeightsError
from ane_core.file_checks.lfs import lfs_pointer_text
from ane_core.layers import to_sequence_first
from ane_core.metrics import psnr
from bert_testing import TINY, inputs_for, padded_inputs, random_model

from bert_ane.architecture import BertArchitecture
from bert_ane.checkpoint import load_checkpoint
from bert_ane.config import encoder_shape


def test_minilm_dimensions_pooling_and_provenance_come_from_the_files(minilm, minilm_path):
    shape = minilm.shape
    assert (shape.family, shape.hidden_size, shape.num_heads, shape.num_layers) == (
        "bert",
        384,
        12,
        6,
    )
    assert (shape.intermediate_size, shape.vocab_size, shape.layer_norm_eps) == (1536, 30522, 1e-12)
    assert (minilm.pooling.mode, minilm.pooling.normalize) == ("mean", True)
    weights = minilm_path / "model.safetensors"
    assert minilm.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert minilm.checkpoint_path == str(weights)
    assert not any(key.startswith("pooler.") for key in minilm.state_dict)


def test_distilbert_and_roberta_configs_map_to_one_shape():
    distil = encoder_shape(
        transformers.DistilBertConfig(
            dim=48, n_heads=3, n_layers=2, hidden_dim=96, activation="gelu"
        )
    )
    assert (distil.hidden_size, distil.num_heads, distil.num_layers) == (48, 3, 2)
    assert (distil.intermediate_size, distil.layer_norm_eps, distil.has_token_types) == (
        96,
        1e-12,
        False,
    )
    roberta = encoder_shape(transformers.RobertaConfig(pad_token_id=1, max_position_embeddings=514))
    assert (roberta.position_offset, roberta.padding_position, roberta.usable_positions) == (
        2,
        1,
        512,
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (transformers.GPT2Config(), "model_type is 'gpt2', which bert-ane does not convert"),
        (transformers.BertConfig(hidden_act="swish"), "activation 'swish' is not implemented"),
        (
            transformers.BertConfig(position_embedding_type="relative_key"),
            "position_embedding_type 'relative_key'",
        ),
    ],
)
def test_configs_it_cannot_convert_are_refused(config, message):
    with pytest.raises(UsageError, match=message):
        encoder_shape(config)


def test_task_checkpoint_loads_its_encoder_only(tmp_path):
    """A BertForMaskedLM directory: ``bert.`` prefix removed, the MLM head left behind."""
    model = random_model("bert", task=True)
    model.save_pretrained(str(tmp_path))
    weights = load_checkpoint(tmp_path)
    assert all(key.startswith(("embeddings.", "encoder.")) for key in weights.state_dict)
    ane = BertArchitecture().build("encoder", "ane", weights, seq_len=12).module
    ids, mask = padded_inputs(12, real=9, vocab_size=TINY["vocab_size"])
    with torch.no_grad():
        want = model.bert(input_ids=ids.long(), attention_mask=mask.long()).last_hidden_state
        assert psnr(want, to_sequence_first(ane(*inputs_for(weights, ids, mask)))) >= 90.0


def test_pytorch_bin_is_read_weights_only(tmp_path, random_checkpoints):
    source = random_checkpoints["bert"]
    shutil.copy(source / "config.json", tmp_path / "config.json")
    reference = load_checkpoint(source)
    torch.save(reference.state_dict, tmp_path / "pytorch_model.bin")
    weights = load_checkpoint(tmp_path)
    assert weights.checkpoint_path == str(tmp_path / "pytorch_model.bin")
    assert weights.state_dict.keys() == reference.state_dict.keys()
    assert all(torch.equal(weights.state_dict[k], v) for k, v in reference.state_dict.items())


class _Payload:
    """Unpickling this would create a file: weights_only loading must refuse it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_code_is_refused_and_never_run(tmp_path, random_checkpoints):
    shutil.copy(random_checkpoints["bert"] / "config.json", tmp_path / "config.json")
    marker = tmp_path / "code-ran"
    torch.save({"embeddings.x": _Payload(str(marker))}, tmp_path / "pytorch_model.bin")
    with pytest.raises(WeightsError, match="pytorch_model.bin was refused: it holds pickled code"):
        load_checkpoint(tmp_path)
    assert not marker.exists()


def _broken(tmp_path, random_checkpoints, case: str):
    source = random_checkpoints["bert"]
    target = tmp_path / "ckpt"
    shutil.copytree(source, target)
    if case == "no-config":
        (target / "config.json").unlink()
    elif case == "no-weights":
        (target / "model.safetensors").unlink()
    elif case == "truncated":
        data = (target / "model.safetensors").read_bytes()
        (target / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif case == "lfs-pointer":  # cloned without `git lfs pull`
        data = (target / "model.safetensors").read_bytes()
        pointer = lfs_pointer_text(hashlib.sha256(data).hexdigest(), len(data))
        (target / "model.safetensors").write_bytes(pointer)
    elif case == "truncated-bin":
        from safetensors.torch import load_file

        (target / "model.safetensors").unlink()
        torch.save(load_file(str(source / "model.safetensors")), target / "pytorch_model.bin")
        data = (target / "pytorch_model.bin").read_bytes()
        (target / "pytorch_model.bin").write_bytes(data[: len(data) // 2])
    elif case == "shard-outside":
        (target / "model.safetensors").rename(tmp_path / "elsewhere.safetensors")
        (target / "model.safetensors.index.json").write_text(
            json.dumps({"weight_map": {"embeddings.x": "../elsewhere.safetensors"}})
        )
    elif case == "missing-tensor":
        from safetensors.torch import load_file, save_file

        state = load_file(str(target / "model.safetensors"))
        state.pop("encoder.layer.1.output.dense.weight")
        save_file(state, str(target / "model.safetensors"))
    elif case == "bad-config":
        (target / "config.json").write_text("{not json")
    elif case == "bad-pooling":
        (target / "1_Pooling").mkdir()
        (target / "1_Pooling" / "config.json").write_text(
            json.dumps({"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True})
        )
    return target


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no-config", "has no config.json"),
        ("no-weights", "has no model.safetensors, model.safetensors.index.json nor"),
        ("truncated", "model.safetensors is truncated"),
        ("lfs-pointer", "model.safetensors is a Git LFS pointer"),
        ("truncated-bin", "pytorch_model.bin is truncated or damaged"),
        ("shard-outside", "names shard '../elsewhere.safetensors', which is not a file name"),
        ("bad-config", "cannot read .*config.json"),
        ("bad-pooling", "selects pooling \\['mean', 'max'\\]"),
    ],
)
def test_broken_checkpoints_are_one_line_weights_errors(
    tmp_path, random_checkpoints, case, message
):
    with pytest.raises(WeightsError, match=message) as caught:
        load_checkpoint(_broken(tmp_path, random_checkpoints, case))
    assert "\n" not in str(caught.value)


def test_missing_tensor_is_named_at_build_time(tmp_path, random_checkpoints):
    weights = load_checkpoint(_broken(tmp_path, random_checkpoints, "missing-tensor"))
    with pytest.raises(WeightsError, match="no tensor 'encoder.layer.1.output.dense.weight'"):
        BertArchitecture().build("encoder", "ane", weights)


def test_usage_errors_before_any_loading(tmp_path, random_checkpoints):
    arch = BertArchitecture()
    with pytest.raises(UsageError, match="bert needs --checkpoint DIR"):
        arch.load_weights(None, None)
    with pytest.raises(UsageError, match="not --size base"):
        arch.load_weights("base", str(random_checkpoints["bert"]))
    with pytest.raises(WeightsError, match="is not a directory"):
        arch.load_weights(None, str(tmp_path / "nowhere"))
    weights = arch.load_weights(None, str(random_checkpoints["bert"]))
    with pytest.raises(UsageError, match="--seq-len 161 is outside 1..160"):
        arch.build("encoder", "ane", weights, seq_len=161)
    with pytest.raises(UsageError, match="no build option depth"):
        arch.build("encoder", "ane", weights, depth=2)
    with pytest.raises(UsageError, match="--token-input got 'words'"):
        arch.build("encoder", "ane", weights, token_input="words")
