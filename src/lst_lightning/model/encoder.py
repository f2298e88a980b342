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

    Each patch starts as ``k`` queries projected from the max-pool of its token embeddings; after
    every encoder layer the queries cross-attend to the token states of their own patch. The ``k``
    query vectors are concatenated and projected to the global width.
    """

    def __init__(self, config: LSTConfig) -> None:
        super().__init__()
        enc, k = config.encoder, config.queries_per_patch
        self.k = k
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
        num_patches: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns token states ``[B, T, D_local]`` and patch vectors ``[B, P, D_global]``."""
        h = self.embed(tokens)
        b, _, d = h.shape
        pooled = max_pool_patches(h, patch_index, num_patches)
        queries = self.query_init(pooled).view(b, num_patches, self.k, d)
        rope = self.rotary(positions)
        for block, cross in zip(self.layers, self.cross, strict=True):
            h = block(h, doc_ids, rope)
            queries = queries + cross(queries, h, patch_index)
        patches = self.to_global(self.out_norm(queries.reshape(b, num_patches, self.k * d)))
        return h, patches
