"""Patch decoder: predicts every token from the encoder's token states and earlier global outputs."""

from __future__ import annotations

import torch
from torch import nn

from .config import LSTConfig
from .cross_attention import TokenCrossAttention
from .layers import Block
from .rope import Rotary


class PatchDecoder(nn.Module):
    """Before each layer tokens cross-attend to their window of global outputs, then self-attend.

    The window of token ``t`` is the last ``cross_window_decoder`` global outputs of its document
    up to the last patch that closed at or before ``t``
    (:func:`~lst_lightning.model.patching.decoder_cross_bounds`); where there is none (inside a
    document's first patch) a learned start context is used. Global outputs enter as ``k``
    key/value vectors each (one linear projection), mirroring the encoder's ``k`` queries.
    """

    def __init__(self, config: LSTConfig) -> None:
        super().__init__()
        dec, k = config.decoder, config.queries_per_patch
        self.k = k
        self.window = config.cross_window_decoder
        self.residual = 2.0 if config.release_compat else 1.0
        """Scale of the token stream at each cross-attention (2: the release's doubled residual)."""
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
    def context_bounds(
        bounds: tuple[torch.Tensor, torch.Tensor], num_patches: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch bounds ``[B, T]`` -> bounds into :meth:`patch_context`: an empty window becomes
        the start context ``[P, P + 1)``."""
        lo, hi = bounds
        empty = hi <= lo
        return lo.masked_fill(empty, num_patches), hi.masked_fill(empty, num_patches + 1)

    def forward(
        self,
        token_states: torch.Tensor,
        context: torch.Tensor,
        bounds: tuple[torch.Tensor, torch.Tensor],
        doc_ids: torch.Tensor,
        positions: torch.Tensor,
    ) -> torch.Tensor:
        """Returns logits ``[B, T, V]``; ``context`` comes from :meth:`patch_context` and
        ``bounds`` from :meth:`context_bounds`."""
        h = token_states
        rope = self.rotary(positions)
        for cross, block in zip(self.cross, self.layers, strict=True):
            h = self.residual * h + cross(h, context, *bounds)
            h = block(h, doc_ids, rope)
        return self.head(self.norm(h))
