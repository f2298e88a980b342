"""Patch encoder: token states -> one vector per patch (global position)."""

from __future__ import annotations

import torch
from torch import nn

from .config import LSTConfig
from .cross_attention import PatchCrossAttention
from .layers import Block
from .patching import max_pool_patches
from .rope import Rotary


class PatchEncoder(nn.Module):
    """Embeds tokens, runs local causal self-attention over them, and builds patch vectors.

    Each patch starts as ``k`` queries projected from the max-pool of its token states after the
    first encoder layer (as the paper's release does: the queries start with local context); after
    every encoder layer the queries cross-attend to the token states of their patch and of up to
    ``cross_window_encoder - 1`` preceding patches of the same document. The ``k`` query vectors are
    concatenated and projected to the global width.
    """

    def __init__(self, config: LSTConfig) -> None:
        super().__init__()
        enc, k = config.encoder, config.queries_per_patch
        self.k = k
        self.window = config.cross_window_encoder
        self.residual = 2.0 if config.release_compat else 1.0
        """Scale of the query stream at each cross-attention: 2 reproduces the release's doubled
        residual (its block returns ``x + attn`` and the caller adds ``x`` again)."""
        self.embed = nn.Embedding(config.vocab_size, enc.d_model)
        self.rotary = Rotary(enc.head_dim, enc.rope_theta)
        self.layers = nn.ModuleList(Block(enc) for _ in range(enc.n_layers))
        self.cross = nn.ModuleList(
            PatchCrossAttention(enc.d_model, enc.n_heads, enc.norm_eps) for _ in range(enc.n_layers)
        )
        self.query_init = nn.Linear(enc.d_model, k * enc.d_model, bias=False)
        self.out_norm = nn.RMSNorm(k * enc.d_model, eps=enc.norm_eps)
        self.to_global = nn.Linear(k * enc.d_model, config.global_model.d_model, bias=False)

    def forward(
        self,
        tokens: torch.Tensor,
        doc_ids: torch.Tensor,
        positions: torch.Tensor,
        patch_index: torch.Tensor,
        bounds: tuple[torch.Tensor, torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns token states ``[B, T, D_local]`` and patch vectors ``[B, P, D_global]``;
        ``bounds`` are the patches' token ranges
        (:func:`~lst_lightning.model.patching.encoder_cross_bounds`)."""
        h = self.embed(tokens)
        b, _, d = h.shape
        num_patches = bounds[0].shape[1]
        rope = self.rotary(positions)
        queries = None
        for block, cross in zip(self.layers, self.cross, strict=True):
            h = block(h, doc_ids, rope)
            if queries is None:
                queries = self.init_queries(max_pool_patches(h, patch_index, num_patches))
            queries = self.residual * queries + cross(queries, h, *bounds)
        patches = self.patch_vectors(queries)
        return h, patches

    def init_queries(self, pooled: torch.Tensor) -> torch.Tensor:
        """``k`` query vectors ``[B, P, k, D]`` from the max-pooled first-layer states ``[B, P, D]``."""
        b, p, d = pooled.shape
        return self.query_init(pooled).view(b, p, self.k, d)

    def patch_vectors(self, queries: torch.Tensor) -> torch.Tensor:
        """The final ``k`` queries ``[B, P, k, D]`` -> patch vectors at the global width."""
        b, p, k, d = queries.shape
        return self.to_global(self.out_norm(queries.reshape(b, p, k * d)))
