"""The learning-rate schedule and parameter groups of the training recipe."""

from __future__ import annotations

import math

import pytest
import torch

from lst_lightning.lit.optim import OptimConfig, build_optimizer, lr_multiplier


def test_warmup_then_cosine_to_floor() -> None:
    assert lr_multiplier(0, 10, 110, 0.01) == pytest.approx(0.1)
    assert lr_multiplier(9, 10, 110, 0.01) == pytest.approx(1.0)
    assert lr_multiplier(10, 10, 110, 0.01) == pytest.approx(1.0)
    mid = 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 0.5))
    assert lr_multiplier(60, 10, 110, 0.01) == pytest.approx(mid)
    assert lr_multiplier(110, 10, 110, 0.01) == pytest.approx(0.01)
    assert lr_multiplier(500, 10, 110, 0.01) == pytest.approx(0.01)


def test_norms_and_vectors_are_not_decayed() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.RMSNorm(4))
    optimizer, _ = build_optimizer(model, OptimConfig(warmup_steps=1), total_steps=10)
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and len(decayed["params"]) == 1
    assert plain["weight_decay"] == 0.0 and len(plain["params"]) == 2
    assert optimizer.defaults["betas"] == (0.9, 0.95)


def test_warmup_longer_than_run_is_rejected() -> None:
    with pytest.raises(ValueError, match="warmup_steps"):
        build_optimizer(torch.nn.Linear(2, 2), OptimConfig(warmup_steps=50), total_steps=20)


def test_network_config_comes_back_from_checkpoint_hparams() -> None:
    """The CLI saves the network as a plain dict; both kinds must come back as themselves."""
    import dataclasses

    from lst_lightning.lit.module import network_from_hparams
    from lst_lightning.model import BaselineConfig, LSTConfig, TransformerConfig

    base = BaselineConfig(vocab_size=77, transformer=TransformerConfig(n_layers=3, d_model=64))
    lst = LSTConfig(vocab_size=88, queries_per_patch=1)
    for config in (base, lst):
        assert network_from_hparams(dataclasses.asdict(config)) == config
        assert network_from_hparams(config) is config
