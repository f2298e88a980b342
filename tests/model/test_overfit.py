"""Both models can memorise a small packed batch: the loss falls well below its start."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from .helpers import random_packed
from .test_causality import VOCAB, tiny_baseline, tiny_lst


def next_token_targets(tokens: torch.Tensor, doc_ids: torch.Tensor) -> torch.Tensor:
    targets = torch.full_like(tokens, -100)
    same = (doc_ids[:, 1:] == doc_ids[:, :-1]) & (doc_ids[:, 1:] >= 0)
    targets[:, :-1] = torch.where(same, tokens[:, 1:], targets[:, :-1])
    return targets


@pytest.mark.parametrize("make", [tiny_lst, tiny_baseline], ids=["lst", "baseline"])
def test_overfits_a_small_batch(make) -> None:
    model = make().train()
    tokens, doc_ids, patch_lengths = random_packed(vocab=VOCAB, seed=11)
    targets = next_token_targets(tokens, doc_ids)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(80):
        logits = model(tokens, doc_ids, patch_lengths)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], losses[::10]
