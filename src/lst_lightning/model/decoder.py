"""Patch decoder: predicts every token from the encoder's token states and earlier global outputs."""

from __future__ import annotations

import torch
from torch import nn

from .config import LSTConfig
from .cross_attention import TokenCrossAttention
from .layers import Block
from .rope import Rotary


class PatchDecoder(nn.Module):
    """Before each layer tokens cross-attend to their context global output, then self-attend.

    The context of token ``t`` is the global output of the last patch that closed at or before
    ``t`` in the same document (``closed_patch`` from the model's patch arithmetic); where there is
    none (inside a document's first patch) a learned start context is used. Global outputs enter as
    ``k`` key/value vectors each (one linear projection), mirroring the encoder's ``k`` queries.
    """

    def __init__(self, config: LSTConfig) -> None:
        super().__init__()
        dec, k = config.decoder, config.queries_per_patch
        self.k = k
        self.context = nn.Linear(config.global_model.d_model, k * dec.d_model, bias=False)
        self.start = nn.Parameter(torch.zeros(k, dec.d_model))
        self.rotary = Rotary(dec.head_dim, dec.rope_theta)
        self.cross = nn.ModuleList(
            TokenCrossAttention(dec.d_model, dec.n_heads, dec.norm_eps) for _ in range(dec.n_layers)
        )
        self.layers = nn.ModuleList(Block(dec) for _ in range(dec.n_layers))
        self.norm = nn.RMSNorm(dec.d_model, eps=dec.norm_eps)
        self.head = nn.Linear(dec.d_model, config.vocab_size, bias=False)

    def patch_context(self, global_out: torch.Tensor) -> torch.Tensor:
        """``[B, P + 1, k, D]``: ``k`` context vectors per global output, the learned start
        context appended at index ``P``."""
        b, p, _ = global_out.shape
        d = self.start.shape[1]
        ctx = self.context(global_out).view(b, p, self.k, d)
        start = self.start.to(ctx.dtype).expand(b, 1, self.k, d)
        return torch.cat([ctx, start], dim=1)

    @staticmethod
    def context_index(
        closed_patch: torch.Tensor, patch_docs: torch.Tensor, doc_ids: torch.Tensor
    ) -> torch.Tensor:
        """``[B, T]``: the closed patch each token reads, or ``P`` (the start context) where no
        patch of its own document has closed yet."""
        idx = closed_patch.clamp(min=0)
        own_doc = (closed_patch >= 0) & (patch_docs.gather(1, idx) == doc_ids)
        return torch.where(own_doc, idx, torch.full_like(idx, patch_docs.shape[1]))

    def forward(
        self,
        token_states: torch.Tensor,
        context: torch.Tensor,
        context_index: torch.Tensor,
        doc_ids: torch.Tensor,
        positions: torch.Tensor,
    ) -> torch.Tensor:
        """Returns logits ``[B, T, V]``; ``context`` and ``context_index`` come from
        :meth:`patch_context` and :meth:`context_index`."""
        h = token_states
        rope = self.rotary(positions)
        for cross, block in zip(self.cross, self.layers, strict=True):
            h = h + cross(h, context, context_index)
            h = block(h, doc_ids, rope)
        return self.head(self.norm(h))
