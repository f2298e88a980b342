"""Rotary position embeddings (RoPE) at explicit, per-document positions."""

from __future__ import annotations

import torch
from torch import nn


class Rotary(nn.Module):
    """Rotary position embedding evaluated at explicit positions.

    Positions are given per token (they restart at 0 in each packed document), so the tables are
    computed per call from ``positions`` instead of being sliced from a fixed cache.
    """

    def __init__(self, head_dim: int, theta: float) -> None:
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``positions [B, T]`` -> ``(cos, sin)`` each ``[B, 1, T, head_dim / 2]`` in float32."""
        angles = positions.float()[:, None, :, None] * self.inv_freq.float()
        return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate ``x [B, H, T, D]`` by the angles in ``rope`` (pairs of adjacent halves)."""
    cos, sin = rope
    x1, x2 = x.float().chunk(2, dim=-1)
    out = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.type_as(x)
