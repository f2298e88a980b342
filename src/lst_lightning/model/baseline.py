"""Base SpeechLLM: one Llama-style decoder over the same token stream as LST (SpiritLM-like)."""

from __future__ import annotations

import torch
from torch import nn

from .config import BaselineConfig
from .layers import TransformerStack, init_weights
from .patching import positions_in_document


class SpeechLLM(nn.Module):
    """Token-level baseline built from the same blocks as LST; patch lengths are ignored."""

    def __init__(self, config: BaselineConfig) -> None:
        super().__init__()
        self.config = config
        tc = config.transformer
        self.embed = nn.Embedding(config.vocab_size, tc.d_model)
        self.stack = TransformerStack(tc)
        self.norm = nn.RMSNorm(tc.d_model, eps=tc.norm_eps)
        self.head = nn.Linear(tc.d_model, config.vocab_size, bias=False)
        init_weights(self, config.init_std, tc.n_layers)

    def forward(
        self,
        tokens: torch.Tensor,
        doc_ids: torch.Tensor,
        patch_lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        h = self.stack(self.embed(tokens), doc_ids, positions_in_document(doc_ids))
        return self.head(self.norm(h))
