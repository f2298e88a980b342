"""Global transformer: the large model, causal over patches, block-causal across documents."""

from __future__ import annotations

import torch
from torch import nn

from .config import TransformerConfig
from .layers import TransformerStack


class GlobalTransformer(nn.Module):
    """Llama-style stack over patch vectors; positions restart at 0 in each packed document.

    ``final_norm=False`` leaves out the closing RMSNorm, as the paper's release does
    (``LSTConfig.release_compat``)."""

    def __init__(self, config: TransformerConfig, final_norm: bool = True) -> None:
        super().__init__()
        self.stack = TransformerStack(config)
        self.norm = nn.RMSNorm(config.d_model, eps=config.norm_eps) if final_norm else nn.Identity()

    def forward(
        self, patches: torch.Tensor, patch_docs: torch.Tensor, patch_positions: torch.Tensor
    ) -> torch.Tensor:
        return self.norm(self.stack(patches, patch_docs, patch_positions))
