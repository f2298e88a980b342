"""The two windowed cross-attentions that connect tokens and patches (paper: window 512 each).

Encoder side: the ``k`` queries of patch ``q`` attend to the token states of patches
``q - W_enc + 1 .. q`` of its document. Decoder side: a token attends to the ``k`` key/value vectors
of each of the last ``W_dec`` global outputs of its document that it may see. Patches are contiguous
token spans, so both are attention in which every query has one contiguous key range ``[lo, hi)``
(:func:`lst_lightning.model.patching.encoder_cross_bounds` / ``decoder_cross_bounds``). Two kernels
compute it, chosen by device:

- **CUDA: flex_attention with a block mask built from the bounds** (:func:`block_mask_from_bounds`).
  The 128 x 128 blocks a query block may touch are found from the minimum and maximum of the
  bounds inside the block, ``O(B * Q/128 * K/128)`` work, and the element mask is the closure
  ``lo[q] <= k < hi[q]``. So no dense ``[queries x keys]`` mask is ever built (at the paper's sizes,
  ``T = 12288`` tokens, ``P * k = 8192`` patch vectors, one such bool mask is ~96 MiB per row and
  side), and the fused kernel skips every block outside all windows, so the work follows the
  window. A banded gather would instead copy ``W * k`` keys per token (~12 GiB per row at 1B).
- **Elsewhere: SDPA with a boolean mask from the bounds**, ``[B, 1, Q, K]``: a few MiB at the tiny
  and bench sizes the CPU trains, and torch's fused CPU kernel.

A query with an empty range gets a zero output (padding patches; the decoder never has one, it
gives such tokens its learned start context).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

try:
    from torch.nn.attention.flex_attention import BlockMask, flex_attention
except ImportError:  # pragma: no cover - torch < 2.5
    BlockMask = flex_attention = None

Kernel = Literal["auto", "flex", "sdpa"]
FLEX_BLOCK = 128
"""flex_attention's default block size (queries and keys)."""
_compiled_flex = None


def bounds_mask(lo: torch.Tensor, hi: torch.Tensor, num_keys: int) -> torch.Tensor:
    """Boolean ``[B, Q, K]`` mask: key ``j`` allowed for query ``i`` iff ``lo[i] <= j < hi[i]``."""
    keys = torch.arange(num_keys, device=lo.device)
    return (keys >= lo[..., None]) & (keys < hi[..., None])


def block_mask_from_bounds(
    lo: torch.Tensor, hi: torch.Tensor, num_keys: int, block: int = FLEX_BLOCK
) -> BlockMask:
    """A flex_attention ``BlockMask`` for per-query key ranges ``lo, hi [B, Q]``, built from the
    bounds alone (never from a dense mask).

    A key block is *full* for a query block when every query of the block sees all of its keys,
    *partial* (the element mask decides) when some query may see some of its keys, and skipped
    otherwise. Query rows past ``Q`` (the last block's padding) are treated as empty.
    """
    b, q_len = lo.shape
    nq, nk = -(-q_len // block), -(-num_keys // block)
    pad = nq * block - q_len
    empty = hi <= lo
    big = torch.iinfo(torch.int32).max
    lo_i = torch.where(empty, big, lo).to(torch.int32)
    hi_i = torch.where(empty, 0, hi).to(torch.int32)
    lo_i = F.pad(lo_i, (0, pad), value=big).view(b, nq, block)
    hi_i = F.pad(hi_i, (0, pad), value=0).view(b, nq, block)
    starts = torch.arange(nk, device=lo.device, dtype=torch.int32) * block
    ends = (starts + block).clamp(max=num_keys)
    touched = (starts < hi_i.amax(-1, keepdim=True)) & (ends > lo_i.amin(-1, keepdim=True))
    full = (lo_i.amax(-1, keepdim=True) <= starts) & (hi_i.amin(-1, keepdim=True) >= ends)
    partial = touched & ~full

    def lists(sel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        count = sel.sum(-1, dtype=torch.int32)[:, None]
        order = torch.argsort((~sel).to(torch.int8), dim=-1, stable=True).to(torch.int32)
        return count, order[:, None]

    # The element mask reads padded bounds so that indices in the last query block stay in range.
    lo_pad, hi_pad = lo_i.view(b, -1), hi_i.view(b, -1)

    def mask_mod(bi, _h, qi, ki):  # noqa: ANN001, ANN202 - flex_attention's signature
        return (ki >= lo_pad[bi, qi]) & (ki < hi_pad[bi, qi])

    kv_num, kv_idx = lists(partial)
    full_num, full_idx = lists(full)
    return BlockMask.from_kv_blocks(
        kv_num,
        kv_idx,
        full_num,
        full_idx,
        BLOCK_SIZE=block,
        mask_mod=mask_mod,
        seq_lengths=(q_len, num_keys),
    )


def _flex(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: BlockMask) -> torch.Tensor:
    """The fused (compiled) kernel on CUDA; the unfused reference elsewhere (tests only)."""
    global _compiled_flex
    if not q.is_cuda:
        return flex_attention(q, k, v, block_mask=mask)
    if _compiled_flex is None:
        _compiled_flex = torch.compile(flex_attention)
    return _compiled_flex(q, k, v, block_mask=mask)


def bounded_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    lo: torch.Tensor | None,
    hi: torch.Tensor | None,
    kernel: Kernel = "auto",
) -> torch.Tensor:
    """``q [B, H, Q, D]`` attends to ``k, v [B, H, K, D]``, query ``i`` to keys ``[lo_i, hi_i)``
    (all keys when the bounds are ``None``). Returns ``[B, H, Q, D]``, zeros where a range is empty.
    ``kernel="auto"`` uses flex_attention on CUDA and SDPA elsewhere."""
    if lo is None or hi is None:
        return F.scaled_dot_product_attention(q, k, v)
    empty = (hi <= lo)[:, None, :, None]
    if kernel == "auto":
        kernel = "flex" if q.is_cuda and flex_attention is not None else "sdpa"
    if kernel == "flex":
        out = _flex(q, k, v, block_mask_from_bounds(lo, hi, k.shape[2]))
    elif kernel == "sdpa":
        # A fully masked row would give NaN: let it see every key, then zero its output.
        mask = bounds_mask(lo, hi, k.shape[2])[:, None] | empty
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    else:
        raise ValueError(f"kernel must be 'auto', 'flex' or 'sdpa', got {kernel!r}")
    return out.masked_fill(empty, 0.0)


class BoundedCrossAttention(nn.Module, ABC):
    """Pre-norm multi-head cross-attention from query vectors to key/value vectors with per-query
    key ranges. Split into projections and :meth:`attend` so the KV-cache generator can cache the
    projected keys and values (``lst_lightning.model.generate``)."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.q = nn.Linear(d_model, d_model, bias=False)
        self.kv = nn.Linear(d_model, 2 * d_model, bias=False)
        self.proj = nn.Linear(d_model, d_model, bias=False)
        self.kernel: Kernel = "auto"
        """Which kernel :func:`bounded_attention` uses; tests set it to compare the two."""

    @abstractmethod
    def query_norm_of(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised queries: each side (patch queries, token states) has its own norm."""

    def key_norm_of(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.n_heads, d // self.n_heads).transpose(1, 2)

    def queries(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, Q, D]`` -> projected queries ``[B, H, Q, hd]``."""
        return self.heads(self.q(self.query_norm_of(x)))

    def keys_values(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``y [B, K, D]`` -> projected keys and values, ``[B, H, K, hd]`` each."""
        keys, values = self.kv(self.key_norm_of(y)).chunk(2, dim=-1)
        return self.heads(keys), self.heads(values)

    def attend(
        self,
        q: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        lo: torch.Tensor | None = None,
        hi: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Projected queries attend to projected keys/values -> ``[B, Q, D]`` (output projection
        applied)."""
        out = bounded_attention(q, keys.type_as(q), values.type_as(q), lo, hi, self.kernel)
        b, h, n, hd = out.shape
        return self.proj(out.transpose(1, 2).reshape(b, n, h * hd))


class PatchCrossAttention(BoundedCrossAttention):
    """Encoder side: the ``k`` queries of each patch attend to the token states in its window."""

    def __init__(self, d_model: int, n_heads: int, norm_eps: float) -> None:
        super().__init__(d_model, n_heads)
        self.query_norm = nn.RMSNorm(d_model, eps=norm_eps)
        self.token_norm = nn.RMSNorm(d_model, eps=norm_eps)

    def query_norm_of(self, x: torch.Tensor) -> torch.Tensor:
        return self.query_norm(x)

    def key_norm_of(self, y: torch.Tensor) -> torch.Tensor:
        return self.token_norm(y)

    def forward(
        self, queries: torch.Tensor, tokens: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
    ) -> torch.Tensor:
        """``queries [B, P, k, D]``, ``tokens [B, T, D]``, token bounds ``lo, hi [B, P]``
        (:func:`~lst_lightning.model.patching.encoder_cross_bounds`) -> ``[B, P, k, D]``, 0 for
        patches with an empty range."""
        b, p, kq, d = queries.shape
        q = self.queries(queries.reshape(b, p * kq, d))
        out = self.attend(
            q, *self.keys_values(tokens), lo.repeat_interleave(kq, 1), hi.repeat_interleave(kq, 1)
        )
        return out.view(b, p, kq, d)


class TokenCrossAttention(BoundedCrossAttention):
    """Decoder side: each token attends to the ``k`` key/value vectors of each global output in its
    window. Keys and values are projected once per global output, not per token."""

    def __init__(self, d_model: int, n_heads: int, norm_eps: float) -> None:
        super().__init__(d_model, n_heads)
        self.norm = nn.RMSNorm(d_model, eps=norm_eps)

    def query_norm_of(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)

    def forward(
        self, tokens: torch.Tensor, context: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
    ) -> torch.Tensor:
        """``tokens [B, T, D]``, ``context [B, C, k, D]`` (``k`` vectors per global output),
        context bounds ``lo, hi [B, T]`` (in units of ``C``, non-empty) -> ``[B, T, D]``."""
        b, c, kq, d = context.shape
        keys, values = self.keys_values(context.reshape(b, c * kq, d))
        return self.attend(self.queries(tokens), keys, values, lo * kq, hi * kq)
