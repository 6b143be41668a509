"""Tests for ane_core.layers: numerics against torch references, Apple's ane_transformers as an
oracle where its semantics match, and the ops coremltools actually produces."""

from __future__ import annotations

import logging
import math
import warnings
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ane_core.layers import (
    ANE_MAX_DIM,
    MASK_VALUE,
    AttentionImpl,
    ChunkedLinearConv2d,
    LayerNormANE,
    LinearConv2d,
    MultiHeadAttentionANE,
    causal_mask,
    chunk_sizes,
    chunked_linear_conv2d,
    multi_head_attention,
    original_attention,
    single_query_attention,
    split_einsum_attention,
    to_channels_first,
    to_sequence_first,
)

IMPLS = [AttentionImpl.SPLIT_EINSUM, AttentionImpl.ORIGINAL]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def psnr(ref: torch.Tensor, out: torch.Tensor) -> float:
    """20 * log10(max|ref| / RMSE), computed in float64."""
    ref64, out64 = ref.double(), out.double()
    rmse = (ref64 - out64).pow(2).mean().sqrt().item()
    peak = ref64.abs().max().item()
    return math.inf if rmse == 0 else 20 * math.log10(peak / rmse)


def ln_reference(x_cf: torch.Tensor, ln: nn.LayerNorm) -> torch.Tensor:
    """nn.LayerNorm applied on the sequence-first view of a (B, C, 1, S) tensor."""
    return to_channels_first(ln(to_sequence_first(x_cf)))


# --------------------------------------------------------------------------- layout


def test_layout_round_trip_and_shapes() -> None:
    x = torch.randn(2, 7, 16)  # (B, S, C)
    cf = to_channels_first(x)
    assert cf.shape == (2, 16, 1, 7)
    assert torch.equal(cf[:, :, 0, :], x.transpose(1, 2))
    assert torch.equal(to_sequence_first(cf), x)
    assert cf.data_ptr() == x.data_ptr()  # views, no copy
    with pytest.raises(ValueError):
        to_channels_first(torch.randn(2, 16, 1, 7))
    with pytest.raises(ValueError):
        to_sequence_first(torch.randn(2, 16, 2, 7))


# --------------------------------------------------------------------------- LinearConv2d


def test_linear_conv2d_loads_linear_state_dict_and_matches_f_linear() -> None:
    lin = nn.Linear(24, 40)
    conv = LinearConv2d(24, 40)
    conv.load_state_dict(lin.state_dict())  # strict: same keys, 2-D weight reshaped by the hook
    assert conv.weight.shape == (40, 24, 1, 1)
    assert (conv.in_features, conv.out_features) == (24, 40)
    x = torch.randn(3, 11, 24)
    ref = F.linear(x, lin.weight, lin.bias)
    out = to_sequence_first(conv(to_channels_first(x)))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    # The caller's state dict is not modified and a 4-D (conv) state dict still loads.
    sd = lin.state_dict()
    LinearConv2d(24, 40).load_state_dict(sd)
    assert sd["weight"].dim() == 2
    LinearConv2d(24, 40).load_state_dict(conv.state_dict())


def test_linear_conv2d_without_bias() -> None:
    lin = nn.Linear(8, 4, bias=False)
    conv = LinearConv2d(8, 4, bias=False)
    conv.load_state_dict(lin.state_dict())
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(to_sequence_first(conv(to_channels_first(x))), lin(x))


def test_swapped_model_loads_stock_state_dict_unchanged() -> None:
    """Linear -> LinearConv2d swap: the stock checkpoint loads strictly; other 2-D weights
    (an embedding table) are left alone by the hook."""

    class Stock(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(10, 16)
            self.fc1 = nn.Linear(16, 32)
            self.fc2 = nn.Linear(32, 16, bias=False)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.fc2(F.gelu(self.fc1(self.embed(ids))))

    class Ane(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(10, 16)
            self.fc1 = LinearConv2d(16, 32)
            self.fc2 = LinearConv2d(32, 16, bias=False)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            h = to_channels_first(self.embed(ids))
            return to_sequence_first(self.fc2(F.gelu(self.fc1(h))))

    stock, ane = Stock(), Ane()
    result = ane.load_state_dict(stock.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert ane.embed.weight.shape == (10, 16)
    ids = torch.randint(0, 10, (2, 9))
    torch.testing.assert_close(ane(ids), stock(ids), rtol=1e-5, atol=1e-5)


def test_from_linear_shares_memory() -> None:
    lin = nn.Linear(12, 20)
    conv = LinearConv2d.from_linear(lin)
    assert conv.weight.device.type == "cpu"
    assert conv.weight.shape == (20, 12, 1, 1)
    assert conv.weight.data_ptr() == lin.weight.data_ptr()
    assert conv.bias is not None and conv.bias.data_ptr() == lin.bias.data_ptr()
    x = torch.randn(2, 3, 12)
    torch.testing.assert_close(to_sequence_first(conv(to_channels_first(x))), lin(x))
    no_bias = LinearConv2d.from_linear(nn.Linear(12, 20, bias=False))
    assert no_bias.bias is None


# --------------------------------------------------------------------------- LayerNormANE


def _random_layernorms(c: int, eps: float = 1e-5) -> tuple[nn.LayerNorm, LayerNormANE]:
    ref = nn.LayerNorm(c, eps=eps)
    with torch.no_grad():
        ref.weight.normal_(1.0, 0.5)
        ref.bias.normal_(0.0, 1.0)  # nonzero bias: the case ane_transformers gets wrong
    ours = LayerNormANE(c, eps=eps)
    ours.load_state_dict(ref.state_dict())  # same names and shapes: loads as is
    return ref, ours


def test_layernorm_matches_nn_layernorm_fp32() -> None:
    ref, ours = _random_layernorms(96)
    x = torch.randn(2, 96, 1, 13) * 3 + 1
    with torch.no_grad():
        diff = (ours(x) - ln_reference(x, ref)).abs().max().item()
    assert diff < 1e-5


def test_layernorm_without_affine_and_init() -> None:
    x = torch.randn(1, 32, 1, 5)
    ours = LayerNormANE(32, elementwise_affine=False)
    assert ours.weight is None and ours.bias is None
    ref = nn.LayerNorm(32, elementwise_affine=False)
    torch.testing.assert_close(ours(x), ln_reference(x, ref), rtol=0, atol=1e-5)
    fresh = LayerNormANE(32)
    assert torch.equal(fresh.weight, torch.ones(32)) and torch.equal(fresh.bias, torch.zeros(32))
    with pytest.raises(ValueError):
        fresh(torch.randn(1, 16, 1, 5))


def test_ane_transformers_layernorm_differs_when_bias_nonzero() -> None:
    """Apple's reference computes (x_hat + bias) * weight, not nn.LayerNorm's x_hat * weight + bias."""
    from ane_transformers.reference.layer_norm import LayerNormANE as AppleLayerNormANE

    c = 64
    ref, ours = _random_layernorms(c)
    apple = AppleLayerNormANE(c)
    apple.load_state_dict(ref.state_dict())
    x = torch.randn(2, c, 1, 9)
    with torch.no_grad():
        expected = ln_reference(x, ref)
        assert (ours(x) - expected).abs().max().item() < 1e-5
        assert (apple(x) - expected).abs().max().item() > 1e-2
        # Same normalisation core: with bias 0 they agree; with their bias / weight
        # correction (as in ane_transformers' reference models) they agree too.
        apple.bias.zero_()
        ours.bias.zero_()
        torch.testing.assert_close(apple(x), ours(x), rtol=1e-5, atol=1e-5)
        apple.bias.copy_(ref.bias / ref.weight)
        torch.testing.assert_close(apple(x), expected, rtol=1e-4, atol=1e-4)


def test_layernorm_fp16_cpu_psnr() -> None:
    ref, ours = _random_layernorms(128)
    x = torch.randn(2, 128, 1, 32) * 4 + 2
    with torch.no_grad():
        expected = ln_reference(x, ref)
        out = ours.half()(x.half())
    assert out.dtype == torch.float16
    assert psnr(expected, out) >= 35


@pytest.mark.parametrize("magnitude", [300.0, 3000.0])
def test_layernorm_fp16_large_activations_do_not_overflow(magnitude: float) -> None:
    """(x - mean)**2 overflows float16 for |x - mean| >= 256: the eager float16 path rescales by
    the per-position max-abs (no casts) and stays accurate; the plain formula collapses."""
    ref, ours = _random_layernorms(256)
    x = torch.randn(2, 256, 1, 16) * magnitude
    x[:, 0] = 20000.0  # one large outlier channel, still a finite float16
    plain = LayerNormANE(256, fp16_rescale=False)
    plain.load_state_dict(ref.state_dict())
    with torch.no_grad():
        expected = ln_reference(x, ref)
        robust_out = ours.half()(x.half())
        plain_out = plain.half()(x.half())
    assert torch.isfinite(robust_out).all()
    assert psnr(expected, robust_out) >= 35
    # The limit of the plain formula: var = inf, so every position collapses to the bias.
    collapsed = plain.bias.view(1, 256, 1, 1).expand_as(plain_out)
    assert torch.equal(plain_out, collapsed)


@pytest.mark.parametrize("magnitude", [1e-1, 1e-2, 1e-3, 1e-5])
def test_layernorm_fp16_small_activations(magnitude: float) -> None:
    ref, ours = _random_layernorms(256)
    x = torch.randn(2, 256, 1, 16) * magnitude
    with torch.no_grad():
        expected = ln_reference(x, ref)
        out = ours.half()(x.half())
    assert psnr(expected, out) >= 35


def test_layernorm_fp16_constant_row_is_finite() -> None:
    ours = LayerNormANE(64).half()
    with torch.no_grad():
        ours.bias.fill_(0.5)
        out = ours(torch.full((1, 64, 1, 4), 7.0, dtype=torch.float16))
    assert torch.isfinite(out).all()
    assert torch.equal(out, torch.full_like(out, 0.5))


# --------------------------------------------------------------------------- attention


def _sdpa_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    n_heads: int,
    mask: torch.Tensor | None,
    key_padding_mask: torch.Tensor | None,
) -> torch.Tensor:
    """torch SDPA on (B, H, S, d) tensors; masks converted from the ANE layout."""
    b, c, _, sq = q.shape
    sk = k.shape[3]
    d = c // n_heads

    def heads(t: torch.Tensor, s: int) -> torch.Tensor:
        return t.reshape(b, n_heads, d, s).transpose(2, 3)

    attn_mask = torch.zeros(b, 1, sq, sk)
    if mask is not None:
        attn_mask = attn_mask + mask.expand(b, sk, 1, sq).permute(0, 2, 3, 1)
    if key_padding_mask is not None:
        attn_mask = attn_mask + key_padding_mask.view(b, 1, 1, sk)
    out = F.scaled_dot_product_attention(heads(q, sq), heads(k, sk), heads(v, sk), attn_mask)
    return out.transpose(2, 3).reshape(b, c, 1, sq)


def _padding_mask(b: int, sk: int, valid: list[int]) -> torch.Tensor:
    kpm = torch.zeros(b, sk)
    for i, n in enumerate(valid):
        kpm[i, n:] = MASK_VALUE
    return kpm


def test_causal_mask_layout() -> None:
    m = causal_mask(3)
    assert m.shape == (1, 3, 1, 3)
    # m[0, key, 0, query] is masked iff key > query
    expected = torch.tensor([[0, 0, 0], [1, 0, 0], [1, 1, 0]], dtype=torch.float32) * MASK_VALUE
    assert torch.equal(m[0, :, 0, :], expected)
    # queries as the last 2 of 4 keys (key/value cache)
    m = causal_mask(2, 4)
    assert torch.equal(m[0, :, 0, :] != 0, torch.tensor([[0, 0], [0, 0], [0, 0], [1, 0]]).bool())


@pytest.mark.parametrize(
    ("sq", "sk", "use_mask", "use_kpm"),
    [(9, 9, True, True), (9, 9, False, False), (5, 12, False, True), (4, 10, True, True)],
)
def test_attention_impls_match_sdpa(sq: int, sk: int, use_mask: bool, use_kpm: bool) -> None:
    b, c, h = 2, 48, 6
    q, k, v = torch.randn(b, c, 1, sq), torch.randn(b, c, 1, sk), torch.randn(b, c, 1, sk)
    mask = causal_mask(sq, sk) if use_mask else None
    kpm = _padding_mask(b, sk, [sk, sk - 3]) if use_kpm else None
    ref = _sdpa_reference(q, k, v, h, mask, kpm)
    split = split_einsum_attention(q, k, v, h, mask=mask, key_padding_mask=kpm)
    orig = original_attention(q, k, v, h, mask=mask, key_padding_mask=kpm)
    assert split.shape == (b, c, 1, sq)
    torch.testing.assert_close(split, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(orig, ref, rtol=1e-5, atol=1e-5)
    for impl in IMPLS:
        out = multi_head_attention(q, k, v, h, impl=impl, mask=mask, key_padding_mask=kpm)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("sk", "use_mask", "use_kpm"), [(9, False, False), (12, True, True)])
def test_single_query_attention_matches_sdpa(sk: int, use_mask: bool, use_kpm: bool) -> None:
    b, c, h = 2, 48, 6
    q, k, v = torch.randn(b, c, 1, 1), torch.randn(b, c, 1, sk), torch.randn(b, c, 1, sk)
    mask = causal_mask(1, sk) if use_mask else None
    if mask is not None:
        mask[:, 2] = MASK_VALUE  # causal alone masks nothing for the last query
    kpm = _padding_mask(b, sk, [sk, sk - 3]) if use_kpm else None
    ref = _sdpa_reference(q, k, v, h, mask, kpm)
    out = single_query_attention(q, k, v, h, mask=mask, key_padding_mask=kpm)
    assert out.shape == (b, c, 1, 1)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    scaled = single_query_attention(q * 0.5, k, v, h, key_padding_mask=kpm, scale=1.0)
    torch.testing.assert_close(scaled, _sdpa_reference(q * 0.5 * 8**0.5, k, v, h, None, kpm))


def test_single_query_attention_returns_each_head_s_softmax_weights() -> None:
    b, c, h, sk = 2, 48, 6, 10
    q, k, v = torch.randn(b, c, 1, 1), torch.randn(b, c, 1, sk), torch.randn(b, c, 1, sk)
    kpm = _padding_mask(b, sk, [sk, sk - 3])
    out, weights = single_query_attention(q, k, v, h, key_padding_mask=kpm, return_weights=True)
    torch.testing.assert_close(out, single_query_attention(q, k, v, h, key_padding_mask=kpm))
    qh = q[:, :, 0, 0].unflatten(1, (h, -1))  # (B, H, d)
    kh = k[:, :, 0, :].unflatten(1, (h, -1))  # (B, H, d, Sk)
    scores = torch.einsum("bhd,bhds->bhs", qh, kh) / (c // h) ** 0.5 + kpm[:, None, :]
    assert weights.shape == (b, h, 1, sk)
    torch.testing.assert_close(weights[:, :, 0, :], scores.softmax(-1), rtol=1e-5, atol=1e-6)


def test_single_query_attention_refuses_several_queries() -> None:
    q = torch.randn(1, 48, 1, 2)
    with pytest.raises(ValueError, match="one query"):
        single_query_attention(q, q, q, 6)


def test_single_query_attention_converts_without_matmul_or_transpose() -> None:
    """Heads as channel groups: a fixed handful of ops whatever the head count, none of them
    a matmul, einsum, transpose or reshape, and no cast in FP16."""

    class Step(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("k", torch.randn(1, 64, 1, 40))
            self.register_buffer("v", torch.randn(1, 64, 1, 40))

        def forward(self, q: torch.Tensor) -> torch.Tensor:
            return single_query_attention(q, self.k, self.v, 8)

    counts = Counter(op.type for op in _ops(_convert_fp16(Step(), torch.randn(1, 64, 1, 1))))
    for absent in ("cast", "matmul", "einsum", "transpose", "reshape", "split"):
        assert counts[absent] == 0, counts
    assert counts["conv"] == 2 and counts["softmax"] == 1 and counts["reduce_sum"] == 1


def test_attention_causal_matches_sdpa_is_causal() -> None:
    b, c, h, s = 1, 32, 4, 7
    q, k, v = (torch.randn(b, c, 1, s) for _ in range(3))
    d = c // h

    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(b, h, d, s).transpose(2, 3)

    ref = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=True)
    ref = ref.transpose(2, 3).reshape(b, c, 1, s)
    for impl in IMPLS:
        out = multi_head_attention(q, k, v, h, impl=impl, mask=causal_mask(s))
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_attention_scale_argument() -> None:
    b, c, h, s = 1, 32, 4, 6
    q, k, v = (torch.randn(b, c, 1, s) for _ in range(3))
    default = split_einsum_attention(q, k, v, h)
    pre_scaled = split_einsum_attention(q * (c // h) ** -0.5, k, v, h, scale=1.0)
    torch.testing.assert_close(pre_scaled, default, rtol=1e-5, atol=1e-6)
    for impl in IMPLS:
        out = multi_head_attention(q, k, v, h, impl=impl, scale=0.3)
        ref = _sdpa_reference(q * 0.3 / (c // h) ** -0.5, k, v, h, None, None)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_attention_rejects_bool_and_mixed_dtype_masks() -> None:
    q = torch.randn(1, 16, 1, 4)
    with pytest.raises(TypeError):
        split_einsum_attention(q, q, q, 2, mask=torch.ones(1, 4, 1, 4, dtype=torch.bool))
    with pytest.raises(TypeError):
        split_einsum_attention(q, q, q, 2, key_padding_mask=torch.zeros(1, 4, dtype=torch.float16))
    with pytest.raises(ValueError):
        split_einsum_attention(q, q, q, 3)


def test_attention_matches_ane_transformers_oracle() -> None:
    """Apple's reference MultiHeadAttention (Conv2d projections, split einsum, masks in
    (B, Sk, 1, Sq) and (B, Sk, 1, 1)) against MultiHeadAttentionANE with the same weights."""
    from ane_transformers.reference.multihead_attention import MultiHeadAttention

    b, c, h, sq, sk = 2, 64, 8, 6, 10
    apple = MultiHeadAttention(c, n_head=h, dropout=0.0).eval()
    with torch.no_grad():
        for p in apple.parameters():
            p.normal_(0, 0.2)
    for impl in IMPLS:
        ours = MultiHeadAttentionANE(c, h, impl=impl).eval()
        ours.load_state_dict(
            {
                f"{mine}.{p}": apple.state_dict()[f"{theirs}.{p}"]
                for mine, theirs in [
                    ("query", "q_proj"),
                    ("key", "k_proj"),
                    ("value", "v_proj"),
                    ("out", "out_proj"),
                ]
                for p in ("weight", "bias")
            }
        )
        x, kv = torch.randn(b, c, 1, sq), torch.randn(b, c, 1, sk)
        qk_mask = causal_mask(sq, sk).expand(b, sk, 1, sq).contiguous()
        kpm = _padding_mask(b, sk, [sk, sk - 4])
        with torch.no_grad():
            expected, _ = apple(
                x, kv, kv, qk_mask=qk_mask, k_mask=kpm.view(b, sk, 1, 1), return_weights=False
            )
            out = ours(x, kv, mask=qk_mask, key_padding_mask=kpm)
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


class _LinearMHA(nn.Module):
    """Sequence-first reference: nn.Linear query/key/value/out + torch SDPA."""

    def __init__(self, dim: int, n_heads: int, k_bias: bool) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim, bias=k_bias)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        kv: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        kv = x if kv is None else kv
        b, sq, c = x.shape
        sk = kv.shape[1]
        d = c // self.n_heads
        q = self.query(x).view(b, sq, self.n_heads, d).transpose(1, 2)
        k = self.key(kv).view(b, sk, self.n_heads, d).transpose(1, 2)
        v = self.value(kv).view(b, sk, self.n_heads, d).transpose(1, 2)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out(a.transpose(1, 2).reshape(b, sq, c))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cross", [False, True])
def test_mha_module_loads_linear_reference(impl: AttentionImpl, cross: bool) -> None:
    b, c, h, sq = 2, 48, 4, 7
    sk = 11 if cross else sq
    ref = _LinearMHA(c, h, k_bias=False).eval()
    ours = MultiHeadAttentionANE(c, h, k_bias=False, impl=impl).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(b, sq, c)
    kv = torch.randn(b, sk, c) if cross else None
    mask = None if cross else causal_mask(sq)
    kpm = _padding_mask(b, sk, [sk, sk - 2])
    # reference mask: (B, 1, Sq, Sk) additive
    attn_mask = kpm.view(b, 1, 1, sk).expand(b, 1, sq, sk)
    if mask is not None:
        attn_mask = attn_mask + mask[0, :, 0, :].T
    with torch.no_grad():
        expected = ref(x, kv, attn_mask=attn_mask)
        out = ours(
            to_channels_first(x),
            None if kv is None else to_channels_first(kv),
            mask=mask,
            key_padding_mask=kpm,
        )
    torch.testing.assert_close(to_sequence_first(out), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_attention_fp16_cpu_psnr(impl: AttentionImpl) -> None:
    b, c, h, s = 2, 64, 4, 24
    q, k, v = (torch.randn(b, c, 1, s) * 2 for _ in range(3))
    mask = causal_mask(s)
    kpm = _padding_mask(b, s, [s, s - 5])
    ref = multi_head_attention(q, k, v, h, impl=impl, mask=mask, key_padding_mask=kpm)
    out = multi_head_attention(
        q.half(), k.half(), v.half(), h, impl=impl, mask=mask.half(), key_padding_mask=kpm.half()
    )
    assert out.dtype == torch.float16
    assert psnr(ref, out) >= 35

    module = MultiHeadAttentionANE(c, h, impl=impl).eval()
    x = torch.randn(b, c, 1, s)
    with torch.no_grad():
        ref = module(x, mask=mask)
        out = module.half()(x.half(), mask=mask.half())
    assert psnr(ref, out) >= 35


# --------------------------------------------------------------------------- chunked


def test_chunk_sizes() -> None:
    assert chunk_sizes(51866) == [12967, 12967, 12966, 12966]
    assert chunk_sizes(51866, ANE_MAX_DIM) == chunk_sizes(51866)
    assert chunk_sizes(16384) == [16384]
    assert chunk_sizes(16385) == [8193, 8192]
    assert chunk_sizes(10, 3) == [3, 3, 2, 2]
    for total, cap in [(1, 1), (7, 7), (100, 7), (51866, 16384), (51865, 1000)]:
        sizes = chunk_sizes(total, cap)
        assert sum(sizes) == total and max(sizes) <= cap
        assert max(sizes) - min(sizes) <= 1
        assert len(sizes) == math.ceil(total / cap)
    with pytest.raises(ValueError):
        chunk_sizes(0, 10)


@pytest.mark.parametrize("bias", [True, False])
def test_chunked_projection_equals_unsplit(bias: bool) -> None:
    lin = nn.Linear(32, 103, bias=bias)
    full = LinearConv2d.from_linear(lin)
    chunked = ChunkedLinearConv2d(32, 103, bias=bias, max_channels=40)
    chunked.load_state_dict(lin.state_dict())  # one (out, in) weight, loads as is
    assert chunked.chunk_sizes == [35, 34, 34]
    x = torch.randn(2, 32, 1, 9)
    with torch.no_grad():
        expected = full(x)
        parts = chunked(x)
        assert isinstance(parts, tuple) and [p.shape[1] for p in parts] == [35, 34, 34]
        torch.testing.assert_close(torch.cat(parts, dim=1), expected, rtol=1e-5, atol=1e-5)
        chunked.concat = True
        torch.testing.assert_close(chunked(x), expected, rtol=1e-5, atol=1e-5)
        # functional form with a 2-D weight (e.g. a tied embedding table)
        joined = chunked_linear_conv2d(x, lin.weight, lin.bias, max_channels=40, concat=True)
        torch.testing.assert_close(joined, expected, rtol=1e-5, atol=1e-5)
        shared = ChunkedLinearConv2d.from_linear(lin, max_channels=50)
        assert shared.weight.data_ptr() == lin.weight.data_ptr()
        assert shared.chunk_sizes == [35, 34, 34]
        torch.testing.assert_close(torch.cat(shared(x), dim=1), expected, rtol=1e-5, atol=1e-5)


def test_chunked_vocab_size_chunks() -> None:
    head = ChunkedLinearConv2d(8, 51866, bias=False)
    assert head.chunk_sizes == [12967, 12967, 12966, 12966]
    out = head(torch.randn(1, 8, 1, 2))
    assert [o.shape for o in out] == [(1, n, 1, 2) for n in head.chunk_sizes]


# --------------------------------------------------------------------------- Core ML conversion


def _convert_fp16(module: nn.Module, x: torch.Tensor, n_outputs: int = 1):
    import coremltools as ct

    logging.getLogger("coremltools").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, x)
        return ct.convert(
            traced,
            inputs=[ct.TensorType(name="x", shape=x.shape, dtype=np.float16)],
            outputs=[ct.TensorType(name=f"y{i}", dtype=np.float16) for i in range(n_outputs)],
            convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT16,
            minimum_deployment_target=ct.target.macOS13,
            skip_model_load=True,
        )


def _ops(mlmodel) -> list:
    """All operations of main, nested blocks included."""
    found = []

    def walk(block) -> None:
        for op in block.operations:
            found.append(op)
            for nested in op.blocks:
                walk(nested)

    for block in mlmodel.get_spec().mlProgram.functions["main"].block_specializations.values():
        walk(block)
    return found


def _const_value(ops: list, name: str) -> list:
    """Value of a const op (ints) by output name."""
    for op in ops:
        if op.type == "const" and op.outputs[0].name == name:
            return list(op.attributes["val"].immediateValue.tensor.ints.values)
    raise KeyError(name)


class _TinyBlock(nn.Module):
    def __init__(self, impl: AttentionImpl) -> None:
        super().__init__()
        self.inp = LinearConv2d(32, 64)
        self.ln1 = LayerNormANE(64)
        self.attn = MultiHeadAttentionANE(64, 4, k_bias=False, impl=impl)
        self.ln2 = LayerNormANE(64)
        self.head = ChunkedLinearConv2d(64, 100, max_channels=40)
        self.register_buffer("mask", causal_mask(8))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = self.inp(x)
        h = h + self.attn(self.ln1(h), mask=self.mask)
        return self.head(self.ln2(h))


@pytest.mark.parametrize("impl", IMPLS)
def test_coreml_fp16_conversion_op_types(impl: AttentionImpl) -> None:
    """FP16 program: zero casts; each LayerNormANE -> one fused layer_norm(axes=[1]) (gamma/beta
    not folded in, the affine becomes a batch_norm); one conv per projection chunk."""
    block = _TinyBlock(impl).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0, 0.2)  # non-identity LN affine, so it is not optimised away
    mlmodel = _convert_fp16(block, torch.randn(1, 32, 1, 8), n_outputs=3)
    ops = _ops(mlmodel)
    counts = Counter(op.type for op in ops)
    assert counts["cast"] == 0
    assert counts["layer_norm"] == 2
    for op in ops:
        if op.type == "layer_norm":
            assert _const_value(ops, op.inputs["axes"].arguments[0].name) == [1]
            assert "gamma" not in op.inputs and "beta" not in op.inputs
    assert counts["batch_norm"] == 2  # the (weight, bias) affine of each LayerNormANE
    for unfused in ("reduce_mean", "rsqrt", "square", "sub"):
        assert counts[unfused] == 0
    assert counts["conv"] == 1 + 4 + 3  # input, q/k/v/out, three vocabulary chunks
    if impl is AttentionImpl.SPLIT_EINSUM:
        assert counts["einsum"] == 8 and counts["softmax"] == 4
    else:
        assert counts["softmax"] == 1 and counts["einsum"] == 0
    from coremltools.proto import FeatureTypes_pb2

    outputs = mlmodel.get_spec().description.output
    assert [list(o.type.multiArrayType.shape) for o in outputs] == [
        [1, 34, 1, 8],
        [1, 33, 1, 8],
        [1, 33, 1, 8],
    ]
    fp16 = FeatureTypes_pb2.ArrayFeatureType.FLOAT16
    assert all(o.type.multiArrayType.dataType == fp16 for o in outputs)


def test_coreml_layernorm_without_affine_is_single_op() -> None:
    mlmodel = _convert_fp16(LayerNormANE(64, elementwise_affine=False), torch.randn(1, 64, 1, 8))
    counts = Counter(op.type for op in _ops(mlmodel))
    assert counts == Counter({"layer_norm": 1, "const": 2})


def test_fp16_trace_uses_fusable_pattern() -> None:
    """The overflow-safe float16 path is eager-only; a float16 trace keeps the plain pattern."""
    ln = LayerNormANE(64).half().eval()
    with torch.no_grad():
        ln.bias.normal_()
    x = torch.randn(1, 64, 1, 8, dtype=torch.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = str(torch.jit.trace(ln, x).graph)
    assert "amax" not in graph and "aten::div" not in graph
    # Converting that float16 trace stays cast-free, but coremltools 9 only fuses the pattern
    # of a float32 trace (see LayerNormANE's docstring), so the pipeline must trace in float32.
    counts = Counter(op.type for op in _ops(_convert_fp16(ln, x)))
    assert counts["cast"] == 0
