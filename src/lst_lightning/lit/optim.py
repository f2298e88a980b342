"""Optimiser and learning-rate schedule of the paper's recipe (DESIGN section 5)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to a floor."""

    lr: float = 4e-4
    """Peak learning rate. Paper 1B: 4e-4."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas. Paper: (0.9, 0.95)."""
    weight_decay: float = 0.1
    """Decoupled weight decay on matrices (not on norms or biases). Paper: 0.1."""
    warmup_steps: int = 2000
    """Linear warm-up length in optimiser steps. Paper: 2000."""
    min_lr_ratio: float = 0.01
    """Floor of the cosine, as a fraction of ``lr``. Paper: 0.01."""

    def __post_init__(self) -> None:
        problems = []
        if not self.lr > 0:
            problems.append(f"model.optim.lr must be > 0, got {self.lr}")
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int):
            problems.append(
                f"model.optim.warmup_steps must be an integer, got {self.warmup_steps!r}"
            )
        elif self.warmup_steps < 0:
            problems.append(f"model.optim.warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0 <= self.min_lr_ratio <= 1:
            problems.append(f"model.optim.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if not self.weight_decay >= 0:
            problems.append(f"model.optim.weight_decay must be >= 0, got {self.weight_decay}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            problems.append(f"model.optim.betas must be two numbers in [0, 1), got {self.betas}")
        if problems:
            raise ValueError("; ".join(problems))


def lr_multiplier(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Fraction of the peak LR at ``step``: linear warm-up from ~0 to 1, cosine from 1 to
    ``min_ratio`` at ``total_steps``, then flat at ``min_ratio``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / span, 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices and embeddings; leave norms, biases and learned vectors undecayed.

    Decided by the owning module (``Linear``/``Embedding`` weights), not by ``p.dim()``: under
    FSDP every parameter is a flat 1-D shard by the time the optimiser is built.
    """
    matrices = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear | nn.Embedding)}
    decay = [p for p in model.parameters() if p.requires_grad and id(p) in matrices]
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in matrices]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]


def build_optimizer(
    model: nn.Module, config: OptimConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    optimizer = torch.optim.AdamW(
        param_groups(model, config.weight_decay), lr=config.lr, betas=config.betas
    )
    if total_steps <= config.warmup_steps:
        raise ValueError(
            f"model.optim.warmup_steps={config.warmup_steps} must be smaller than the run's "
            f"{total_steps} optimiser steps (trainer.max_steps)"
        )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_multiplier(step, config.warmup_steps, total_steps, config.min_lr_ratio),
    )
    return optimizer, schedule
