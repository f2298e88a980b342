"""Token choice (:mod:`lst_lightning.model.sampling`): greedy, temperature, top-k, top-p, masks."""

from __future__ import annotations

import pytest
import torch

from lst_lightning.model.sampling import allowed_mask, choose_tokens

# probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625 in two rows (the second one reversed)
PROBS = torch.tensor([[0.5, 0.25, 0.125, 0.0625, 0.0625], [0.0625, 0.0625, 0.125, 0.25, 0.5]])
LOGITS = PROBS.log()


def draws(n: int = 400, **options) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.stack([choose_tokens(LOGITS, generator=g, **options) for _ in range(n)])


def test_greedy_is_the_argmax_of_the_allowed_ids() -> None:
    assert choose_tokens(LOGITS).tolist() == [0, 4]
    mask = allowed_mask([1, 2, 3], 5, 2, None, torch.device("cpu"))
    assert choose_tokens(LOGITS, mask=mask).tolist() == [1, 3]
    assert choose_tokens(LOGITS, mask=mask, top_k=1, top_p=0.1).tolist() == [1, 3]


def test_top_k_and_top_p_keep_only_the_most_likely_tokens() -> None:
    free = draws(temperature=1.0)
    assert set(free[:, 0].tolist()) == {0, 1, 2, 3, 4}  # all five appear without filtering
    top2 = draws(temperature=1.0, top_k=2)
    assert set(top2[:, 0].tolist()) == {0, 1} and set(top2[:, 1].tolist()) == {3, 4}
    # top_p = 0.7: 0.5 < 0.7, 0.5 + 0.25 >= 0.7, so the two most likely tokens stay
    nucleus = draws(temperature=1.0, top_p=0.7)
    assert set(nucleus[:, 0].tolist()) == {0, 1} and set(nucleus[:, 1].tolist()) == {3, 4}
    assert set(draws(temperature=1.0, top_p=0.5)[:, 0].tolist()) == {0}
    # the sampled frequencies follow the renormalised probabilities (2 : 1)
    share = (top2[:, 0] == 0).float().mean().item()
    assert 0.6 < share < 0.73


def test_allowed_mask_keeps_eos_and_rejects_bad_input() -> None:
    cpu = torch.device("cpu")
    mask = allowed_mask(range(2), 5, 3, 4, cpu)
    assert mask.shape == (3, 5) and mask[:, [0, 1, 4]].all() and not mask[:, 2:4].any()
    rows = torch.tensor([[True, False, False, False, False], [False, False, True, False, False]])
    assert allowed_mask(rows, 5, 2, None, cpu).equal(rows)
    assert allowed_mask(None, 5, 2, 4, cpu) is None
    with pytest.raises(ValueError, match="no token it may emit"):
        allowed_mask(torch.zeros(5, dtype=torch.bool), 5, 2, None, cpu)
