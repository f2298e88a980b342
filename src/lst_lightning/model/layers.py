"""Llama-style building blocks shared by every transformer in the kit."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import SelfAttention
from .config import TransformerConfig
from .rope import Rotary


class SwiGLU(nn.Module):
    """Gated feed-forward layer: ``W2(silu(W1 x) * W3 x)``."""

    def __init__(self, d_model: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(d_model, hidden, bias=False)
        self.w3 = nn.Linear(d_model, hidden, bias=False)
        self.w2 = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    """Pre-norm transformer block: causal (windowed, document-masked) self-attention + SwiGLU."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.attn_norm = nn.RMSNorm(config.d_model, eps=config.norm_eps)
        self.attn = SelfAttention(config.d_model, config.n_heads, config.window)
        self.ffn_norm = nn.RMSNorm(config.d_model, eps=config.norm_eps)
        self.ffn = SwiGLU(config.d_model, config.hidden)

    def forward(
        self, x: torch.Tensor, doc_ids: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), doc_ids, rope)
        return x + self.ffn(self.ffn_norm(x))


class TransformerStack(nn.Module):
    """``n_layers`` blocks sharing one rotary table; no embedding and no output head."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.rotary = Rotary(config.head_dim, config.rope_theta)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layers))

    def forward(
        self, x: torch.Tensor, doc_ids: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        rope = self.rotary(positions)
        for layer in self.layers:
            x = layer(x, doc_ids, rope)
        return x


def init_weights(module: nn.Module, std: float, n_residual_layers: int) -> None:
    """GPT-2/Llama initialisation: normal(std) everywhere, output projections of residual branches
    scaled by ``1/sqrt(2 * layers)`` so the residual stream's variance does not grow with depth."""
    for name, param in module.named_parameters():
        if param.dim() < 2:
            continue
        scale = 1.0
        if name.endswith(("attn.proj.weight", "ffn.w2.weight", "cross.proj.weight")):
            scale = (2 * max(n_residual_layers, 1)) ** -0.5
        nn.init.normal_(param, mean=0.0, std=std * scale)
