"""The two cross-attentions that connect tokens and patches.

Both are *local*: a patch query only sees the tokens of its own patch, and a token only sees the
``k`` key/value vectors of one global output. So neither needs a dense ``[patches x tokens]`` mask:
the encoder side is a segment softmax computed with scatter operations (memory ``O(T k d)``), and
the decoder side is a softmax over ``k`` entries per token, with keys and values projected once
per patch.
"""

from __future__ import annotations

import torch
from torch import nn


class PatchCrossAttention(nn.Module):
    """Encoder side: the ``k`` queries of each patch attend to the token states inside the patch."""

    def __init__(self, d_model: int, n_heads: int, norm_eps: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.query_norm = nn.RMSNorm(d_model, eps=norm_eps)
        self.token_norm = nn.RMSNorm(d_model, eps=norm_eps)
        self.q = nn.Linear(d_model, d_model, bias=False)
        self.kv = nn.Linear(d_model, 2 * d_model, bias=False)
        self.proj = nn.Linear(d_model, d_model, bias=False)

    def forward(
        self, queries: torch.Tensor, tokens: torch.Tensor, patch_index: torch.Tensor
    ) -> torch.Tensor:
        """``queries [B, P, k, D]``, ``tokens [B, T, D]``, ``patch_index [B, T]`` (``P`` marks
        padding tokens) -> the attention output ``[B, P, k, D]`` (0 for empty patches)."""
        b, p, kq, d = queries.shape
        t, h = tokens.shape[1], self.n_heads
        hd = d // h
        q = self.q(self.query_norm(queries)).view(b, p, kq, h, hd)
        keys, values = self.kv(self.token_norm(tokens)).view(b, t, 2, h, hd).unbind(2)
        # Each token meets the queries of its own patch; padding tokens fall in a spare bucket P.
        q = torch.cat([q, q.new_zeros(b, 1, kq, h, hd)], dim=1)
        q_tok = q.gather(1, patch_index[:, :, None, None, None].expand(b, t, kq, h, hd))
        scores = torch.einsum("btkhd,bthd->btkh", q_tok.float(), keys.float()) * hd**-0.5
        bucket = patch_index[:, :, None, None].expand(b, t, kq, h)
        seg_max = scores.new_full((b, p + 1, kq, h), float("-inf"))
        seg_max = seg_max.scatter_reduce(1, bucket, scores.detach(), reduce="amax")
        weights = torch.exp(scores - seg_max.gather(1, bucket))
        denom = scores.new_zeros(b, p + 1, kq, h).scatter_add(1, bucket, weights)
        weighted = weights[..., None] * values.float()[:, :, None]
        num = scores.new_zeros(b, p + 1, kq, h, hd).scatter_add(
            1, bucket[..., None].expand(b, t, kq, h, hd), weighted
        )
        out = (num / denom.clamp_min(1e-30)[..., None])[:, :p].reshape(b, p, kq, d)
        return self.proj(out.type_as(queries))


class TokenCrossAttention(nn.Module):
    """Decoder side: each token attends to the ``k`` key/value vectors of its context patch.

    Keys and values are projected once per patch and then gathered per token, so their cost grows
    with the number of global positions, not with the number of tokens.
    """

    def __init__(self, d_model: int, n_heads: int, norm_eps: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm = nn.RMSNorm(d_model, eps=norm_eps)
        self.q = nn.Linear(d_model, d_model, bias=False)
        self.kv = nn.Linear(d_model, 2 * d_model, bias=False)
        self.proj = nn.Linear(d_model, d_model, bias=False)

    def forward(
        self, tokens: torch.Tensor, context: torch.Tensor, context_index: torch.Tensor
    ) -> torch.Tensor:
        """``tokens [B, T, D]``, ``context [B, C, k, D]`` (per-patch vectors), ``context_index
        [B, T]`` (which of the ``C`` contexts each token reads) -> ``[B, T, D]``."""
        b, t, d = tokens.shape
        c, kq, h = context.shape[1], context.shape[2], self.n_heads
        hd = d // h
        q = self.q(self.norm(tokens)).view(b, t, h, hd)
        kv = self.kv(context).view(b, c, kq * 2 * h * hd)
        kv = kv.gather(1, context_index[:, :, None].expand(b, t, kv.shape[-1]))
        keys, values = kv.view(b, t, kq, 2, h, hd).unbind(3)
        scores = torch.einsum("bthd,btkhd->bthk", q.float(), keys.float()) * hd**-0.5
        out = torch.einsum("bthk,btkhd->bthd", scores.softmax(dim=-1), values.float())
        return self.proj(out.reshape(b, t, d).type_as(tokens))
