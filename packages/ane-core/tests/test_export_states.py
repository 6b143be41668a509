"""Stateful exports (``ExportableModel.states``, ``export_component(stateful=True)``) on a
minimal cache model: one float16 buffer that every call blends a new column into."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ane_core.architecture import Architecture, ExportableModel, TensorSpec
from ane_core.convert import to_coreml, trace
from ane_core.errors import UsageError
from ane_core.executor import Program, ProgramInputError
from ane_core.export import check_stateful, export_component, package_name
from ane_core.targets import Precision, parse_target

SHAPE = (1, 8, 1, 6)  # (B, C, 1, positions)


class ColumnCache(nn.Module):
    """Writes ``proj(x)`` at the one-hot position into ``cache``; returns the cache's sum
    over positions (so the output depends on every earlier call)."""

    def __init__(self, cache_dtype: torch.dtype = torch.float16) -> None:
        super().__init__()
        self.proj = nn.Conv2d(SHAPE[1], SHAPE[1], 1)
        self.register_buffer("cache", torch.zeros(SHAPE, dtype=cache_dtype), persistent=False)

    def forward(self, x: torch.Tensor, update_mask: torch.Tensor) -> torch.Tensor:
        update = update_mask[:, None, None, :]
        blended = self.cache.to(x.dtype) * (1.0 - update) + self.proj(x) * update
        self.cache[:, :, :, :] = blended.to(self.cache.dtype)
        return blended.sum(dim=3, keepdim=True)


def _model(cache_dtype: torch.dtype = torch.float16) -> ExportableModel:
    torch.manual_seed(0)
    mask = torch.zeros(1, SHAPE[3])
    mask[0, 0] = 1.0
    return ExportableModel(
        module=ColumnCache(cache_dtype).eval(),
        inputs=[TensorSpec("x", (1, 8, 1, 1), "new column"), TensorSpec("update_mask", (1, 6), "")],
        outputs=[TensorSpec("total", (1, 8, 1, 1), "sum of the cached columns")],
        example_inputs=(torch.randn(1, 8, 1, 1), mask),
        states=[TensorSpec("cache", SHAPE, "every column written so far")],
    )


class CacheArchitecture(Architecture):
    name = "cachetoy"

    def __init__(self) -> None:
        self.built: list[dict] = []

    def sizes(self):
        return ()

    def components(self):
        return ("encoder", "step")

    def stateful_components(self, variant):
        return ("step",) if variant == "ane" else ()

    def load_weights(self, size, checkpoint, seed=0):
        return type("W", (), {"source": "random", "checkpoint_path": None, "sha256": None})()

    def build(self, component, variant, weights, **options):
        self.built.append(dict(options))
        if options.get("stateful"):
            return _model()
        return ExportableModel(
            module=nn.Conv2d(8, 8, 1).eval(),
            inputs=[TensorSpec("x", (1, 8, 1, 1), "")],
            outputs=[TensorSpec("y", (1, 8, 1, 1), "")],
            example_inputs=(torch.randn(1, 8, 1, 1),),
        )


@pytest.mark.parametrize("precision", [Precision.FP16, Precision.FP32])
def test_stateful_export_keeps_the_cache_between_calls(tmp_path, precision):
    arch = CacheArchitecture()
    result = export_component(
        arch,
        size=None,
        component="step",
        variant="ane",
        weights=arch.load_weights(None, None),
        precision=precision,
        target=parse_target("macOS15", precision=precision, stateful=True),
        output_dir=tmp_path,
        stateful=True,
    )
    assert arch.built == [{"stateful": True}]
    assert result.path.name == f"cachetoy-step-ane-{precision.value}-stateful.mlpackage"
    assert result.op_counts["write_state"] == 1
    if precision is Precision.FP16:
        assert result.cast_count == 0
    program = Program.load(result.path)
    assert list(program.inputs) == ["x", "update_mask"] and list(program.states) == ["cache"]
    reference = _model().module
    state = program.new_state()
    dtype = precision.numpy_dtype
    for position in range(4):
        x = torch.randn(1, 8, 1, 1)
        mask = torch.zeros(1, 6)
        mask[0, position] = 1.0
        with torch.no_grad():
            want = reference(x, mask).numpy()
        feed = {"x": x.numpy().astype(dtype), "update_mask": mask.numpy().astype(dtype)}
        got = program(feed, state=state)["total"]
        np.testing.assert_allclose(got, want, rtol=0.02, atol=0.02)
    np.testing.assert_allclose(state["cache"], reference.cache.numpy(), rtol=0.01, atol=0.01)
    # An app may fill a state before a call (MLState.withMultiArray); the executor's does.
    program.write_state(state, "cache", np.ones((1, 8, 1, 6)))
    assert state["cache"].dtype == np.float16 and np.all(state["cache"] == 1)
    with pytest.raises(ProgramInputError, match="has no state 'missing'"):
        program.write_state(state, "missing", np.ones(1))
    with pytest.raises(ProgramInputError, match=r"shape \(1, 8, 1, 6\)"):
        program.write_state(state, "cache", np.ones((8, 6)))


def test_non_stateful_components_export_as_usual(tmp_path):
    arch = CacheArchitecture()
    result = export_component(
        arch,
        size=None,
        component="encoder",
        variant="ane",
        weights=arch.load_weights(None, None),
        precision=Precision.FP16,
        target=parse_target("macOS15", stateful=True),
        output_dir=tmp_path,
        stateful=True,
    )
    assert arch.built == [{}]
    assert result.path.name == "cachetoy-encoder-ane-fp16.mlpackage"


def test_old_target_is_refused_before_building(tmp_path):
    arch = CacheArchitecture()
    with pytest.raises(UsageError, match="no Core ML state"):
        export_component(
            arch,
            size=None,
            component="step",
            variant="ane",
            weights=arch.load_weights(None, None),
            precision=Precision.FP16,
            target=parse_target("macOS14"),
            output_dir=tmp_path,
            stateful=True,
        )
    assert arch.built == [] and list(tmp_path.iterdir()) == []


def test_stateful_needs_a_component_that_has_state():
    arch = CacheArchitecture()
    check_stateful(arch, "ane", ["encoder", "step"])
    with pytest.raises(UsageError, match="no stateful variant"):
        check_stateful(arch, "ane", ["encoder"])
    with pytest.raises(UsageError, match="--arch stock"):
        check_stateful(arch, "stock", ["step"])


def test_float32_state_buffer_is_refused():
    """coremltools would drop the write to a float32 buffer declared as float16 state."""
    model = _model(cache_dtype=torch.float32)
    with pytest.raises(ValueError, match="float16 buffer"):
        to_coreml(trace(model), model, Precision.FP16, parse_target("macOS15", stateful=True)[1])


def test_package_name_marks_stateful():
    name = package_name("a", "s", "decoder", "ane", Precision.FP16, stateful=True)
    assert name == "a-s-decoder-ane-fp16-stateful.mlpackage"
    tagged = package_name("a", "s", "decoder", "ane", Precision.FP16, stateful=True, tags=["x"])
    assert tagged == "a-s-decoder-ane-fp16-stateful-x.mlpackage"
