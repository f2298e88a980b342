"""Self-attention with one entry point for every mask the kit needs.

A token at position ``i`` of a row may attend to position ``j`` iff both belong to the same packed
document, ``j <= i`` (causal) and ``i - j < window`` (sliding window, when set). Two kernels compute
it: flash-attn's varlen kernel on CUDA when installed (documents become variable-length sequences,
no dense mask is built), and torch's ``scaled_dot_product_attention`` with a boolean mask otherwise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .rope import apply_rotary

try:  # optional: the `gpu` extra
    from flash_attn import flash_attn_varlen_func
except ImportError:  # pragma: no cover - depends on the environment
    flash_attn_varlen_func = None


def flash_available(x: torch.Tensor) -> bool:
    """True when the flash-attn kernel can run on ``x``."""
    return (
        flash_attn_varlen_func is not None
        and x.is_cuda
        and x.dtype in (torch.float16, torch.bfloat16)
    )


def attention_mask(doc_ids: torch.Tensor, window: int | None) -> torch.Tensor:
    """Boolean ``[B, 1, T, T]`` mask: same document, causal, inside the window.

    Padding tokens share the document id ``-1``, so each still sees itself and no row is empty.
    """
    t = doc_ids.shape[1]
    idx = torch.arange(t, device=doc_ids.device)
    allowed = idx[None, :] <= idx[:, None]
    if window is not None:
        allowed = allowed & (idx[:, None] - idx[None, :] < window)
    same_doc = doc_ids[:, :, None] == doc_ids[:, None, :]
    return (same_doc & allowed)[:, None]


def document_cu_seqlens(doc_ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Cumulative sequence lengths of the documents of a ``[B, T]`` batch, flattened row-major.

    Each maximal run of equal document ids inside a row is one sequence (as flash-attn's varlen
    kernels want). Returns ``(cu_seqlens int32 [N + 1], max_seqlen)``.
    """
    b, t = doc_ids.shape
    flat = doc_ids.reshape(-1)
    starts = torch.ones_like(flat, dtype=torch.bool)
    starts[1:] = flat[1:] != flat[:-1]
    starts[::t] = True
    begin = starts.nonzero().squeeze(1)
    cu = torch.cat([begin, begin.new_tensor([b * t])]).to(torch.int32)
    return cu, int((cu[1:] - cu[:-1]).max())


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, doc_ids: torch.Tensor, window: int | None
) -> torch.Tensor:
    """Masked attention for ``q, k, v [B, H, T, D]``; returns ``[B, H, T, D]``."""
    if flash_available(q):
        b, h, t, d = q.shape
        cu, max_len = document_cu_seqlens(doc_ids)

        def flat(x: torch.Tensor) -> torch.Tensor:
            return x.transpose(1, 2).reshape(b * t, h, d)

        out = flash_attn_varlen_func(
            flat(q),
            flat(k),
            flat(v),
            cu,
            cu,
            max_len,
            max_len,
            causal=True,
            window_size=(-1, -1) if window is None else (window - 1, 0),
        )
        return out.reshape(b, t, h, d).transpose(1, 2)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask(doc_ids, window))


class SelfAttention(nn.Module):
    """Multi-head causal self-attention with RoPE, document masking and an optional window."""

    def __init__(self, d_model: int, n_heads: int, window: int | None) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.window = window
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.proj = nn.Linear(d_model, d_model, bias=False)

    def forward(
        self, x: torch.Tensor, doc_ids: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, rope), apply_rotary(k, rope)
        out = attend(q, k, v, doc_ids, self.window)
        return self.proj(out.transpose(1, 2).reshape(b, t, d))
