"""Multi-head attention on channels-first ``(B, C, 1, S)`` tensors, split per head.

Why ("Deploying Transformers on the Apple Neural Engine"):

* Principle 1, data format: tensors stay ``(B, C, 1, S)`` (sequence on the last axis, which
  the ANE pads to 64 bytes), projections are 1x1 convolutions (:class:`LinearConv2d`).
* Principle 2, chunking large intermediate tensors: instead of one batched matmul over a
  ``(B, H, S, d)`` reshape, each head is computed separately with ``q.split`` / ``einsum``, so
  every intermediate is a small 4-D tensor and no head reshape is needed.
* Principle 3, minimising memory copies: the only transpose is one ``k.transpose(1, 3)``;
  the scores of a head are laid out ``(B, Sk, 1, Sq)``, the key axis on axis 1 (channels), so
  the softmax runs over axis 1 and the query sequence stays on the last axis.

Masks are additive and follow that layout: ``mask`` broadcasts to ``(B, Sk, 1, Sq)`` (note: the
transpose of PyTorch's ``(Sq, Sk)`` convention, see :func:`causal_mask`), ``key_padding_mask``
is ``(B, Sk)``. Use a large negative finite value such as ``-1e4`` for masked entries: it is
safe in float16 and a fully masked row stays finite (``-inf`` would give NaN).

:class:`AttentionImpl` ``ORIGINAL`` computes the same math with one batched matmul on
``(B, H, S, d)`` reshapes, for comparison and benchmarking.
"""

from __future__ import annotations

import enum

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .layout import static_size
from .linear import LinearConv2d

__all__ = [
    "AttentionImpl",
    "MultiHeadAttentionANE",
    "causal_mask",
    "multi_head_attention",
    "original_attention",
    "single_query_attention",
    "split_einsum_attention",
]

MASK_VALUE = -1e4
"""Default additive value for masked positions (finite, representable in float16)."""


class AttentionImpl(str, enum.Enum):
    """Which attention kernel :func:`multi_head_attention` traces."""

    SPLIT_EINSUM = "split_einsum"
    """One einsum per head on 4-D channels-first tensors (ANE-friendly)."""
    ORIGINAL = "original"
    """One batched matmul on ``(B, H, S, d)`` reshapes (the usual GPU formulation)."""


def causal_mask(
    seq_len_q: int,
    seq_len_k: int | None = None,
    *,
    value: float = MASK_VALUE,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Additive causal mask in the ANE layout, shape ``(1, Sk, 1, Sq)``.

    Query ``i`` may attend key ``j`` iff ``j <= i + (Sk - Sq)`` (queries are the last ``Sq``
    positions of the ``Sk`` keys, as with a key/value cache); masked entries hold ``value``.
    """
    seq_len_k = seq_len_q if seq_len_k is None else seq_len_k
    k_idx = torch.arange(seq_len_k, device=device).view(seq_len_k, 1)
    q_idx = torch.arange(seq_len_q, device=device).view(1, seq_len_q) + (seq_len_k - seq_len_q)
    mask = torch.zeros(seq_len_k, seq_len_q, dtype=dtype, device=device)
    mask.masked_fill_(k_idx > q_idx, value)
    return mask.view(1, seq_len_k, 1, seq_len_q)


def _check_inputs(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    n_heads: int,
    mask: Tensor | None,
    key_padding_mask: Tensor | None,
) -> tuple[int, int]:
    """Validate shapes and mask dtypes; return the (static) head sizes ``(d, dv)``."""
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            "attention expects (B, C, 1, S) tensors, got "
            f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    c, ck, cv = static_size(q, 1), static_size(k, 1), static_size(v, 1)
    if c != ck or c % n_heads != 0:
        raise ValueError(
            f"q and k must have the same channel count divisible by n_heads={n_heads}, "
            f"got {c} and {ck}"
        )
    if cv % n_heads != 0 or static_size(v, 3) != static_size(k, 3):
        raise ValueError(f"v {tuple(v.shape)} does not fit k {tuple(k.shape)} / n_heads={n_heads}")
    for name, m in (("mask", mask), ("key_padding_mask", key_padding_mask)):
        if m is None:
            continue
        if not m.is_floating_point():
            raise TypeError(f"{name} must be an additive float mask (0 / -1e4), got {m.dtype}")
        if m.dtype != q.dtype:
            raise TypeError(f"{name} dtype {m.dtype} differs from q dtype {q.dtype}; no casts here")
    return c // n_heads, cv // n_heads


def _scaled(q: Tensor, d: int, scale: float | None) -> Tensor:
    """``q * scale`` (default ``d ** -0.5``); no op at all when the scale is 1."""
    scale = d**-0.5 if scale is None else scale
    return q if scale == 1.0 else q * scale


def split_einsum_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    n_heads: int,
    mask: Tensor | None = None,
    key_padding_mask: Tensor | None = None,
    scale: float | None = None,
) -> Tensor:
    """Scaled dot-product attention, one einsum per head, channels-first.

    Args:
        q: queries ``(B, C, 1, Sq)``.
        k: keys ``(B, C, 1, Sk)``.
        v: values ``(B, Cv, 1, Sk)``.
        n_heads: number of heads ``H``; head size ``d = C // H``.
        mask: additive, broadcastable to ``(B, Sk, 1, Sq)`` (e.g. :func:`causal_mask`).
        key_padding_mask: additive ``(B, Sk)``, applied as ``(B, Sk, 1, 1)``.
        scale: multiplies ``q``; default ``d ** -0.5``. Pass ``1.0`` if ``q`` is pre-scaled.

    Returns:
        ``(B, Cv, 1, Sq)``: heads concatenated on axis 1.

    Channel counts are baked into a traced graph as constants; batch and sequence sizes are
    never read, so they stay symbolic.
    """
    d, dv = _check_inputs(q, k, v, n_heads, mask, key_padding_mask)
    q = _scaled(q, d, scale)
    if key_padding_mask is not None:
        key_padding_mask = key_padding_mask[:, :, None, None]  # (B, Sk, 1, 1)

    # Explicit sizes (split_with_sizes) convert to one static MIL split; ``split(d)`` makes
    # coremltools compute the sizes in-graph from the shape (six more ops per split to fold).
    q_heads = q.split([d] * n_heads, dim=1)  # H x (B, d, 1, Sq)
    k_heads = k.transpose(1, 3).split([d] * n_heads, dim=3)  # H x (B, Sk, 1, d)
    v_heads = v.split([dv] * n_heads, dim=1)  # H x (B, dv, 1, Sk)

    outputs = []
    for qh, kh, vh in zip(q_heads, k_heads, v_heads, strict=True):
        weights = torch.einsum("bchq,bkhc->bkhq", qh, kh)  # (B, Sk, 1, Sq)
        if mask is not None:
            weights = weights + mask
        if key_padding_mask is not None:
            weights = weights + key_padding_mask
        weights = weights.softmax(dim=1)  # over the keys
        outputs.append(torch.einsum("bkhq,bchk->bchq", weights, vh))  # (B, dv, 1, Sq)
    return torch.cat(outputs, dim=1)


def single_query_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    n_heads: int,
    mask: Tensor | None = None,
    key_padding_mask: Tensor | None = None,
    scale: float | None = None,
    return_weights: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Attention for one query position, heads kept as channel groups: no matmul, no key transpose.

    Same contract as :func:`split_einsum_attention` with ``Sq == 1``. Why a second kernel:
    a decoder that runs one token per call has a single query, so the per-head ``q @ k`` is a
    dot product per key. Those dot products for all heads at once are an element-wise product
    ``q * k`` ``(B, C, 1, Sk)`` summed within each head's ``d`` channels by a grouped 1x1
    convolution (``groups = H``, weights of ones) into scores ``(B, H, 1, Sk)``; the softmax
    runs over the last axis for every head at once; a second grouped convolution repeats each
    head's weights over its ``dv`` channels, and ``(weights * v).sum(-1)`` gives the output.

    That is 7 ops per attention whatever the head count (plus one add per mask), where the
    split einsum needs about 4 per head (64 for 16 heads), all rank 4 and channels-first, so
    the keys and values are read in the cache layout ``(B, C, 1, Sk)`` without the key
    transpose (only a ``mask`` in the split-einsum layout is transposed to ``(B, 1, 1, Sk)``). The grouped convolutions
    cost ``C * Sk`` multiply-adds each, the size of the ``q @ k`` itself. Fewer ops also make
    the Core ML conversion of a decoder about twice as fast (coremltools' time grows with op
    count). Masks are additive as elsewhere: ``mask`` broadcasts to ``(B, Sk, 1, 1)``,
    ``key_padding_mask`` is ``(B, Sk)``.

    ``return_weights``: also return the post-softmax weights ``(B, H, 1, Sk)``, head ``h`` in
    channel ``h`` (what word-level timestamps read from a decoder's cross-attention); they are
    an intermediate of the kernel, so returning them adds no op.
    """
    d, dv = _check_inputs(q, k, v, n_heads, mask, key_padding_mask)
    if static_size(q, 3) != 1:
        raise ValueError(f"single_query_attention takes one query, got q {tuple(q.shape)}")
    q = _scaled(q, d, scale)
    head_sum = torch.ones(
        n_heads, d, 1, 1, dtype=q.dtype, device=q.device
    )  # output channel h sums input channels h*d .. +d
    scores = F.conv2d(q * k, head_sum, groups=n_heads)  # (B, H, 1, Sk)
    if mask is not None:
        scores = scores + mask.transpose(1, 3)  # (B|1, 1, 1, Sk)
    if key_padding_mask is not None:
        scores = scores + key_padding_mask[:, None, None, :]  # (B, 1, 1, Sk)
    weights = scores.softmax(dim=3)  # over the keys, every head at once
    head_repeat = torch.ones(
        n_heads * dv, 1, 1, 1, dtype=q.dtype, device=q.device
    )  # channel h*dv + i copies head h
    expanded = F.conv2d(weights, head_repeat, groups=n_heads)  # (B, Cv, 1, Sk)
    out = (expanded * v).sum(dim=3, keepdim=True)  # (B, Cv, 1, 1)
    return (out, weights) if return_weights else out


def original_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    n_heads: int,
    mask: Tensor | None = None,
    key_padding_mask: Tensor | None = None,
    scale: float | None = None,
) -> Tensor:
    """Same contract as :func:`split_einsum_attention`, with one batched matmul on ``(B, H, S, d)``.

    This is the usual GPU formulation (reshape into heads, ``q @ k^T``, softmax over the last
    axis, ``@ v``); masks are given in the same ANE layout and permuted to ``(B, 1, Sq, Sk)``.
    """
    d, dv = _check_inputs(q, k, v, n_heads, mask, key_padding_mask)
    q = _scaled(q, d, scale)
    qh = q.squeeze(2).unflatten(1, (n_heads, d)).transpose(2, 3)  # (B, H, Sq, d)
    kh = k.squeeze(2).unflatten(1, (n_heads, d))  # (B, H, d, Sk)
    vh = v.squeeze(2).unflatten(1, (n_heads, dv)).transpose(2, 3)  # (B, H, Sk, dv)
    weights = torch.matmul(qh, kh)  # (B, H, Sq, Sk)
    if mask is not None:
        m = mask
        while m.dim() < 4:
            m = m.unsqueeze(0)
        weights = weights + m.permute(0, 2, 3, 1)  # (B|1, 1, Sq|1, Sk|1)
    if key_padding_mask is not None:
        weights = weights + key_padding_mask[:, None, None, :]  # (B, 1, 1, Sk)
    weights = weights.softmax(dim=-1)
    out = torch.matmul(weights, vh)  # (B, H, Sq, dv)
    return out.transpose(2, 3).flatten(1, 2).unsqueeze(2)  # (B, Cv, 1, Sq)


def multi_head_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    n_heads: int,
    impl: AttentionImpl = AttentionImpl.SPLIT_EINSUM,
    mask: Tensor | None = None,
    key_padding_mask: Tensor | None = None,
    scale: float | None = None,
) -> Tensor:
    """Dispatch to :func:`split_einsum_attention` or :func:`original_attention`."""
    impl = AttentionImpl(impl)
    fn = split_einsum_attention if impl is AttentionImpl.SPLIT_EINSUM else original_attention
    return fn(q, k, v, n_heads, mask=mask, key_padding_mask=key_padding_mask, scale=scale)


class MultiHeadAttentionANE(nn.Module):
    """Multi-head attention block for ``(B, C, 1, S)`` tensors with 1x1-conv projections.

    Projections are :class:`LinearConv2d` modules named ``query``, ``key``, ``value`` and
    ``out``, so the state dict of a module holding ``nn.Linear`` layers of those names (and the
    same bias choices) loads into this one unchanged.

    Args:
        embed_dim: ``C``.
        n_heads: number of heads; ``C`` must be divisible by it.
        q_bias, k_bias, v_bias, out_bias: whether each projection has a bias.
        impl: attention kernel, see :class:`AttentionImpl`.
    """

    def __init__(
        self,
        embed_dim: int,
        n_heads: int,
        q_bias: bool = True,
        k_bias: bool = True,
        v_bias: bool = True,
        out_bias: bool = True,
        impl: AttentionImpl = AttentionImpl.SPLIT_EINSUM,
    ) -> None:
        super().__init__()
        if embed_dim % n_heads != 0:
            raise ValueError(f"embed_dim={embed_dim} is not divisible by n_heads={n_heads}")
        self.embed_dim = embed_dim
        self.n_heads = n_heads
        self.impl = AttentionImpl(impl)
        self.query = LinearConv2d(embed_dim, embed_dim, bias=q_bias)
        self.key = LinearConv2d(embed_dim, embed_dim, bias=k_bias)
        self.value = LinearConv2d(embed_dim, embed_dim, bias=v_bias)
        self.out = LinearConv2d(embed_dim, embed_dim, bias=out_bias)

    def forward(
        self,
        x: Tensor,
        kv: Tensor | None = None,
        mask: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """Attend from ``x`` ``(B, C, 1, Sq)`` to ``kv`` ``(B, C, 1, Sk)`` (``None``: to ``x``).

        ``mask`` broadcasts to ``(B, Sk, 1, Sq)`` and ``key_padding_mask`` is ``(B, Sk)``, both
        additive. Returns ``(B, C, 1, Sq)``.
        """
        source = x if kv is None else kv
        q = self.query(x)
        k = self.key(source)
        v = self.value(source)
        attn = multi_head_attention(
            q, k, v, self.n_heads, impl=self.impl, mask=mask, key_padding_mask=key_padding_mask
        )
        return self.out(attn)

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, n_heads={self.n_heads}, impl={self.impl.value}"
