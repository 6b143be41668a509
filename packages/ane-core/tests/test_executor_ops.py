"""Each MIL op of the reference executor against a torch (or numpy) reference.

Programs are built with coremltools' MIL Builder, so every op reaches the executor with the
input names and defaults of coremltools' own op definitions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ane_core._coremltools import coremltools
from ane_core.executor import LoweredProgram, Program, UnsupportedOpError, supported_ops
from ane_core.executor.lowering import lowered_ops
from ane_core.executor.lowering.check import compare_ops

ct = coremltools()
from coremltools.converters.mil import Builder as mb  # noqa: E402
from coremltools.converters.mil.mil import types  # noqa: E402

RNG = np.random.default_rng(0)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _with_arity(build, n: int):
    """A function of exactly ``n`` positional arguments (``mb.program`` counts them)."""
    arities = {
        1: lambda a: build(a),
        2: lambda a, b: build(a, b),
        3: lambda a, b, c: build(a, b, c),
        4: lambda a, b, c, d: build(a, b, c, d),
    }
    return arities[n]


def run(build, *inputs: np.ndarray, dtype=types.fp32) -> np.ndarray | list:
    """Build a MIL program around ``build(*vars)`` and evaluate it on ``inputs``.

    Every program is also run by the torch lowering (:class:`LoweredProgram`), op by op
    against this numpy oracle: each case here is a case of the lowering too, which must stay
    bit-equal (or, for accumulating ops, within the documented bound) and must not fall back
    to numpy for an op it lowers.
    """
    specs = [mb.TensorSpec(shape=x.shape, dtype=dtype) for x in inputs]
    program = mb.program(input_specs=specs, opset_version=ct.target.iOS18)(
        _with_arity(build, len(inputs))
    )
    names = list(program.functions["main"].inputs)
    feed = dict(zip(names, inputs, strict=True))
    outputs = Program(program)(feed)
    check_lowering(LoweredProgram(program), feed)
    values = list(outputs.values())
    return values[0] if len(values) == 1 else values


def check_lowering(lowered: LoweredProgram, feed: dict) -> None:
    """The lowered program agrees with the oracle op by op (see ``compare_ops``)."""
    assert not set(lowered.numpy_steps) & set(lowered_ops()), lowered.numpy_steps
    differences = compare_ops(lowered, feed)
    assert differences, "the program ran no op"
    outside = [d for d in differences if not d.within_bound]
    assert not outside, outside


def close(actual, expected, tol=1e-5) -> None:
    expected = expected.detach().numpy() if isinstance(expected, torch.Tensor) else expected
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)


T = torch.from_numpy


@pytest.mark.parametrize(
    ("op", "reference"),
    [
        ("add", torch.add),
        ("sub", torch.sub),
        ("mul", torch.mul),
        ("real_div", torch.div),
        ("maximum", torch.maximum),
        ("minimum", torch.minimum),
        ("pow", lambda a, b: torch.pow(a.abs(), b)),
    ],
)
def test_binary_ops_broadcast(op, reference):
    x, y = rand(2, 3, 4), rand(3, 1)
    if op == "pow":
        x = np.abs(x)
    close(run(lambda a, b: getattr(mb, op)(x=a, y=b), x, y), reference(T(x), T(y)))


@pytest.mark.parametrize(
    ("op", "reference"),
    [
        ("exp", torch.exp),
        ("tanh", torch.tanh),
        ("sigmoid", torch.sigmoid),
        ("relu", torch.relu),
        ("silu", F.silu),
        ("erf", torch.erf),
        ("sqrt", lambda a: torch.sqrt(a.abs())),
        ("abs", torch.abs),
        ("floor", torch.floor),
        ("square", torch.square),
    ],
)
def test_unary_ops(op, reference):
    x = rand(3, 5)
    if op == "sqrt":
        x = np.abs(x)
    close(run(lambda a: getattr(mb, op)(x=a), x), reference(T(x)))


def test_rsqrt_log_inverse_apply_epsilon():
    x = np.abs(rand(4)) + 0.1
    close(run(lambda a: mb.rsqrt(x=a, epsilon=0.5), x), 1 / np.sqrt(x + 0.5))
    close(run(lambda a: mb.log(x=a, epsilon=0.25), x), np.log(x + 0.25))
    close(run(lambda a: mb.inverse(x=a, epsilon=0.125), x), 1 / (x + 0.125))


@pytest.mark.parametrize(
    ("mode", "reference"),
    [
        ("EXACT", lambda x: F.gelu(x)),
        ("TANH_APPROXIMATION", lambda x: F.gelu(x, approximate="tanh")),
        ("SIGMOID_APPROXIMATION", lambda x: x * torch.sigmoid(1.702 * x)),
    ],
)
def test_gelu_modes(mode, reference):
    x = rand(4, 16) * 3
    close(run(lambda a: mb.gelu(x=a, mode=mode), x), reference(T(x)))


@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_softmax_axis(axis):
    x = rand(3, 4, 5) * 4
    close(run(lambda a: mb.softmax(x=a, axis=axis), x), torch.softmax(T(x), dim=axis))


def test_layer_norm_last_axes_and_channel_axis():
    x, gamma, beta = rand(2, 3, 8), rand(3, 8), rand(3, 8)
    result = run(
        lambda a: mb.layer_norm(x=a, axes=[-2, -1], gamma=gamma, beta=beta, epsilon=1e-3), x
    )
    close(result, F.layer_norm(T(x), (3, 8), T(gamma), T(beta), eps=1e-3), 1e-4)
    y = rand(1, 6, 1, 7)
    channel = run(lambda a: mb.layer_norm(x=a, axes=[1], epsilon=1e-5), y)
    reference = F.layer_norm(T(y).permute(0, 2, 3, 1), (6,)).permute(0, 3, 1, 2)
    close(channel, reference, 1e-4)


def test_batch_norm():
    x = rand(2, 4, 3, 5)
    mean, var, gamma, beta = rand(4), np.abs(rand(4)) + 0.5, rand(4), rand(4)
    result = run(
        lambda a: mb.batch_norm(x=a, mean=mean, variance=var, gamma=gamma, beta=beta, epsilon=1e-3),
        x,
    )
    reference = F.batch_norm(T(x), T(mean), T(var), T(gamma), T(beta), eps=1e-3)
    close(result, reference, 1e-4)


CONV_CASES = [
    # (x shape, weight shape, strides, dilations, groups, pad_type, pad)
    ((1, 4, 1, 12), (6, 4, 1, 3), [1, 2], [1, 1], 1, "custom", [0, 0, 1, 1]),
    ((1, 4, 7, 9), (6, 2, 3, 3), [2, 1], [1, 2], 2, "valid", None),
    ((2, 3, 10), (5, 3, 3), [1], [2], 1, "same", None),
    ((1, 3, 9, 8), (4, 3, 2, 3), [2, 3], [1, 1], 1, "same", None),
    ((1, 3, 9, 8), (4, 3, 2, 2), [1, 1], [1, 1], 1, "same_lower", None),
    ((1, 8, 1, 5), (8, 8, 1, 1), [1, 1], [1, 1], 1, "valid", None),
    ((2, 8, 1, 100), (6, 8, 1, 1), [1, 1], [1, 1], 1, "valid", None),
]


def _torch_conv(x, w, b, strides, dilations, groups, pads):
    spatial = len(strides)
    flat = [p for pair in reversed(pads) for p in pair]  # F.pad: last axis first
    x = F.pad(x, flat)
    conv = F.conv1d if spatial == 1 else F.conv2d
    return conv(x, w, b, stride=strides, dilation=dilations, groups=groups)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv(case):
    x_shape, w_shape, strides, dilations, groups, pad_type, pad = case
    x, w, b = rand(*x_shape), rand(*w_shape), rand(w_shape[0])
    kwargs = dict(strides=strides, dilations=dilations, groups=groups, pad_type=pad_type)
    if pad is not None:
        kwargs["pad"] = pad
    result = run(lambda a: mb.conv(x=a, weight=w, bias=b, **kwargs), x)
    if pad_type == "custom":
        pads = list(zip(pad[0::2], pad[1::2], strict=True))
    elif pad_type == "valid":
        pads = [(0, 0)] * len(strides)
    else:
        pads = []
        for size, k, s, d in zip(x_shape[2:], w_shape[2:], strides, dilations, strict=True):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small, large = total // 2, total - total // 2
            pads.append((small, large) if pad_type == "same" else (large, small))
    reference = _torch_conv(T(x), T(w), T(b), strides, dilations, groups, pads)
    close(result, reference, 1e-4)


def test_linear_and_matmul_transposes():
    x, w, b = rand(2, 3, 5), rand(4, 5), rand(4)
    close(run(lambda a: mb.linear(x=a, weight=w, bias=b), x), F.linear(T(x), T(w), T(b)), 1e-4)
    p, q = rand(2, 5, 3), rand(2, 4, 5)
    result = run(lambda a, c: mb.matmul(x=a, y=c, transpose_x=True, transpose_y=True), p, q)
    close(result, T(p).transpose(1, 2) @ T(q).transpose(1, 2), 1e-4)


@pytest.mark.parametrize(
    ("equation", "shapes"),
    [
        ("bkhc,bchq->bkhq", [(1, 7, 1, 4), (1, 4, 1, 6)]),
        ("bchk,bkhq->bchq", [(1, 4, 1, 7), (1, 7, 1, 6)]),
        ("nchw,nwhu->nchu", [(2, 3, 4, 5), (2, 5, 4, 6)]),
        ("nchw,nwhu->nchu", [(2, 3, 1, 5), (2, 5, 4, 6)]),  # H broadcast
        ("chw,whr->chr", [(3, 4, 5), (5, 4, 2)]),
    ],
)
def test_einsum(equation, shapes):
    a, b = (rand(*s) for s in shapes)
    result = run(lambda x, y: mb.einsum(values=(x, y), equation=equation), a, b)
    if (
        len(shapes[0]) == 4 and shapes[0][2] != shapes[1][2]
    ):  # torch.einsum does not broadcast labelled axes
        a = np.broadcast_to(a, (2, 3, 4, 5))
    close(result, torch.einsum(equation, T(np.ascontiguousarray(a)), T(b)), 1e-4)


def test_reshape_transpose_expand_squeeze():
    x = rand(2, 3, 4)
    close(run(lambda a: mb.reshape(x=a, shape=[0, -1, 2]), x), x.reshape(2, 6, 2))
    close(run(lambda a: mb.transpose(x=a, perm=[2, 0, 1]), x), x.transpose(2, 0, 1))
    close(run(lambda a: mb.expand_dims(x=a, axes=[0, -1]), x), x[None, ..., None])
    y = rand(1, 3, 1, 4)
    close(run(lambda a: mb.squeeze(x=a, axes=[2]), y), y[:, :, 0])
    close(run(lambda a: mb.squeeze(x=a), y), y[0, :, 0])


def test_split_and_concat():
    x = rand(2, 7, 3)
    parts = run(lambda a: mb.split(x=a, split_sizes=[2, 5], axis=1), x)
    close(parts[0], x[:, :2])
    close(parts[1], x[:, 2:])
    thirds = run(lambda a: mb.split(x=a, num_splits=3, axis=-1), x)
    assert [p.shape for p in thirds] == [(2, 7, 1)] * 3
    a, b = rand(2, 3), rand(2, 3)
    close(run(lambda p, q: mb.concat(values=(p, q), axis=1), a, b), np.concatenate([a, b], 1))
    interleaved = run(lambda p, q: mb.concat(values=(p, q), axis=1, interleave=True), a, b)
    close(interleaved, np.stack([a, b], axis=2).reshape(2, 6))


def test_slice_by_index_masks_and_slice_by_size():
    x = rand(4, 6, 5)
    result = run(
        lambda a: mb.slice_by_index(
            x=a,
            begin=[1, 0, -1],
            end=[3, 4, 0],
            stride=[1, 2, 1],
            begin_mask=[False, True, False],
            end_mask=[False, False, True],
            squeeze_mask=[False, False, True],
        ),
        x,
    )
    close(result, x[1:3, :4:2, -1])
    close(
        run(lambda a: mb.slice_by_size(x=a, begin=[1, 2, 0], size=[2, -1, 3]), x), x[1:3, 2:, 0:3]
    )


def test_gather_and_gather_along_axis():
    x = rand(5, 4)
    indices = np.array([[4, 0], [1, 1]], dtype=np.int32)
    close(run(lambda a: mb.gather(x=a, indices=indices, axis=0), x), x[indices])
    along = np.array([[0, 3, 1, 2]] * 5, dtype=np.int32)
    close(
        run(lambda a: mb.gather_along_axis(x=a, indices=along, axis=1), x),
        np.take_along_axis(x, along, axis=1),
    )


@pytest.mark.parametrize(
    ("op", "reference"),
    [("reduce_mean", np.mean), ("reduce_sum", np.sum), ("reduce_max", np.max)],
)
def test_reductions(op, reference):
    x = rand(3, 4, 5)
    close(
        run(lambda a: getattr(mb, op)(x=a, axes=[1], keep_dims=True), x),
        reference(x, 1, keepdims=True),
    )
    close(run(lambda a: getattr(mb, op)(x=a, axes=[0, 2]), x), reference(x, (0, 2)), 1e-4)


def test_cast_fill_select_band_part_pad():
    x = rand(3, 4) * 5
    assert run(lambda a: mb.cast(x=a, dtype="int32"), x).dtype == np.int32
    np.testing.assert_array_equal(run(lambda a: mb.cast(x=a, dtype="int32"), x), x.astype(np.int32))
    close(run(lambda a: mb.add(x=a, y=mb.fill(shape=[3, 4], value=2.0)), x), x + 2)
    close(
        run(lambda a: mb.select(cond=mb.greater(x=a, y=0.0), a=a, b=mb.mul(x=a, y=-1.0)), x),
        np.abs(x),
    )
    close(run(lambda a: mb.band_part(x=a, lower=0, upper=-1), x), np.triu(x))
    close(
        run(lambda a: mb.pad(x=a, pad=[1, 0, 2, 1], mode="constant", constant_val=7.0), x),
        np.pad(x, [(1, 0), (2, 1)], constant_values=7.0),
    )


def test_scaled_dot_product_attention_with_mask():
    q, k, v = rand(1, 2, 5, 8), rand(1, 2, 6, 8), rand(1, 2, 6, 8)
    mask = rand(5, 6)
    result = run(
        lambda a, b, c, m: mb.scaled_dot_product_attention(query=a, key=b, value=c, attn_mask=m),
        q,
        k,
        v,
        mask,
    )
    close(result, F.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=T(mask)), 1e-4)


def test_slice_update():
    x, update = rand(2, 6, 3), rand(2, 2, 3)
    result = run(
        lambda a, u: mb.slice_update(x=a, update=u, begin=[0, 3, 0], end=[2, 5, 3]), x, update
    )
    expected = x.copy()
    expected[:, 3:5] = update
    close(result, expected)


def test_constexpr_ops_match_coremltools_decompression():
    """Dequantisation ops against coremltools' own ``decompress`` of the same data."""
    data = RNG.integers(-8, 8, size=(6, 8)).astype(np.int8)
    scale = (np.abs(rand(3, 2)) + 0.1).astype(np.float32)
    offset = RNG.integers(-2, 2, size=(3, 2)).astype(np.int8)
    indices = RNG.integers(0, 4, size=(6, 8)).astype(types.nptype_from_builtin(types.uint2))
    lut = rand(2, 1, 4, 1)
    captured = {}

    @mb.program(input_specs=[mb.TensorSpec(shape=(6, 8))], opset_version=ct.target.iOS18)
    def program(x):
        w1 = mb.constexpr_blockwise_shift_scale(data=data, scale=scale, offset=offset)
        w2 = mb.constexpr_lut_to_dense(indices=indices, lut=lut)
        captured["w1"], captured["w2"] = w1.op, w2.op
        return mb.add(x=mb.mul(x=x, y=w1), y=w2)

    x = rand(6, 8)
    result = Program(program)({"x": x})
    w1 = captured["w1"].materialized_val_inference()
    w2 = captured["w2"].materialized_val_inference()
    close(list(result.values())[0], x * w1 + w2)


def test_affine_dequantize_and_ios16_lut():
    quantized = RNG.integers(0, 255, size=(4, 3)).astype(np.uint8)
    zero_point = np.array([3, 100, 7, 9], dtype=np.uint8)
    scale = np.array([0.5, 0.25, 2.0, 1.0], dtype=np.float32)
    lut = rand(4)
    packed = np.packbits(np.array([[1, 0], [1, 1], [0, 0], [0, 1]] * 3).ravel(), bitorder="little")

    @mb.program(input_specs=[mb.TensorSpec(shape=(4, 3))], opset_version=ct.target.iOS16)
    def program(x):
        w = mb.constexpr_affine_dequantize(
            quantized_data=quantized, zero_point=zero_point, scale=scale, axis=0
        )
        t = mb.constexpr_lut_to_dense(lut=lut, indices=packed, shape=np.uint32([4, 3]))
        return mb.add(x=mb.add(x=x, y=w), y=t)

    x = rand(4, 3)
    expected_w = (quantized.astype(np.float32) - zero_point[:, None]) * scale[:, None]
    expected_t = lut[np.array([1, 3, 0, 2] * 3)].reshape(4, 3)
    close(list(Program(program)({"x": x}).values())[0], x + expected_w + expected_t)


@pytest.mark.parametrize("engine", [Program, LoweredProgram])
def test_stateful_program_accumulates_in_caller_state(engine):
    """Both engines write the caller's state buffer, as Core ML's MLState."""

    @mb.program(
        input_specs=[
            mb.StateTensorSpec(shape=(2, 3), dtype=types.fp16),
            mb.TensorSpec(shape=(2, 3), dtype=types.fp16),
        ],
        opset_version=ct.target.iOS18,
    )
    def program(cache, x):
        total = mb.add(x=mb.read_state(input=cache), y=x)
        mb.coreml_update_state(state=cache, value=total)
        return mb.mul(x=total, y=np.float16(2.0))

    executor = engine(program)
    state = executor.new_state()
    x = np.full((2, 3), 1.5, dtype=np.float16)
    executor({"x": x}, state=state)
    second = list(executor({"x": x}, state=state).values())[0]
    np.testing.assert_array_equal(state["cache"], np.full((2, 3), 3.0, np.float16))
    np.testing.assert_array_equal(second, np.full((2, 3), 6.0, np.float16))


def test_unknown_op_is_an_error_naming_it():
    assert "argsort" not in supported_ops()
    with pytest.raises(UnsupportedOpError, match="'argsort'"):
        run(lambda a: mb.argsort(x=a), rand(3))
