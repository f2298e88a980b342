"""The budget callbacks stop at the first optimiser step that reaches the budget, log it, and take
no step at all when a run resumes past it; the throughput monitor takes a peak-FLOPs override."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from lst_lightning.callbacks.budget import ComputeBudget, TokenBudget
from lst_lightning.callbacks.throughput import SpeechThroughputMonitor
from lst_lightning.data.stream.batch import IGNORE_INDEX, PackedBatch


class CountingModule(L.LightningModule):
    """Adds a known amount to each counter per batch, like SpeechTextLM does."""

    def __init__(self, flops_per_step: float, tokens_per_step: int) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.flops_per_step = flops_per_step
        self.tokens_per_step = tokens_per_step
        self.flops_seen = 0.0
        self.flops_per_batch = int(flops_per_step)
        self.register_buffer("tokens_seen", torch.zeros((), dtype=torch.long))
        self.logged: dict[str, float] = {}

    def training_step(self, batch: torch.Tensor | PackedBatch, batch_idx: int) -> torch.Tensor:
        self.flops_seen += self.flops_per_step
        self.tokens_seen += self.tokens_per_step
        if isinstance(batch, PackedBatch):
            batch = batch.doc_ids[:, :2].float()
        return self.layer(batch).pow(2).mean()

    def log(self, name: str, value, *args, **kwargs) -> None:  # record what callbacks log
        self.logged[name] = float(value)
        super().log(name, value, *args, **kwargs)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def packed_batch() -> PackedBatch:
    return PackedBatch(
        tokens=torch.zeros(2, 4, dtype=torch.long),
        targets=torch.full((2, 4), IGNORE_INDEX),
        doc_ids=torch.tensor([[0, 0, 0, -1], [0, 0, -1, -1]]),
        patch_lengths=torch.tensor([[3, 0], [2, 0]]),
        speech_targets=torch.zeros(2, 4, dtype=torch.bool),
        speech_patches=torch.zeros(2, 2, dtype=torch.bool),
    )


def run(
    module: L.LightningModule, callback: L.Callback, data: DataLoader | None = None, **trainer_args
) -> L.Trainer:
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=trainer_args.pop("max_steps", 100),
        logger=trainer_args.pop("logger", False),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
        **trainer_args,
    )
    trainer.fit(module, data or DataLoader(torch.randn(400, 2), batch_size=1))
    return trainer


def test_compute_budget_stops_at_the_first_step_reaching_it() -> None:
    module = CountingModule(flops_per_step=1e9, tokens_per_step=10)
    budget = ComputeBudget(max_flops=7.5e9)
    trainer = run(module, budget)
    assert trainer.global_step == 8  # 7 steps give 7e9 < 7.5e9, the 8th reaches 8e9
    assert budget.reached_at == pytest.approx(8e9)
    assert module.logged["budget/flops_reached"] == pytest.approx(8e9)


def test_token_budget_counts_optimizer_steps_with_accumulation() -> None:
    module = CountingModule(flops_per_step=1.0, tokens_per_step=10)
    budget = TokenBudget(max_tokens=55)
    trainer = run(module, budget, accumulate_grad_batches=2)
    # 10 tokens per batch, 2 batches per step: 60 >= 55 after 6 batches, i.e. 3 optimiser steps.
    assert trainer.global_step == 3
    assert int(module.tokens_seen) == 60
    assert module.logged["budget/tokens_reached"] == 60


def test_a_run_resumed_past_its_budget_takes_no_step() -> None:
    module = CountingModule(flops_per_step=1.0, tokens_per_step=10)
    module.tokens_seen += 1000
    trainer = run(module, TokenBudget(max_tokens=500))
    assert trainer.global_step == 0


def test_budgets_reject_bad_values_and_modules_without_counters() -> None:
    with pytest.raises(ValueError, match="ComputeBudget: the budget must be > 0"):
        ComputeBudget(max_flops=0)
    with pytest.raises(ValueError, match="TokenBudget"):
        TokenBudget(max_tokens=float("nan"))  # type: ignore[arg-type]
    with pytest.raises(AttributeError, match="needs a `flops_seen` counter"):
        ComputeBudget(1.0).seen(L.LightningModule())


def test_throughput_monitor_takes_a_peak_override_for_mfu(tmp_path: Path) -> None:
    monitor = SpeechThroughputMonitor(peak_flops=2e9, window_size=2)
    module = CountingModule(flops_per_step=1e9, tokens_per_step=10)
    data = DataLoader([packed_batch()] * 8, batch_size=None)
    logger = CSVLogger(tmp_path)
    trainer = run(module, monitor, data, max_steps=4, logger=logger, log_every_n_steps=1)
    assert monitor.available_flops == 2e9
    mfu = float(trainer.logged_metrics["train/device/mfu"])
    flops_per_sec = float(trainer.logged_metrics["train/device/flops_per_sec"])
    assert mfu == pytest.approx(flops_per_sec / 2e9)
    assert float(trainer.logged_metrics["train/device/items_per_sec"]) > 0
    assert monitor.batch_size_fn(packed_batch()) == 2 and monitor.length_fn(packed_batch()) == 5
    with pytest.raises(ValueError, match="peak_flops"):
        SpeechThroughputMonitor(peak_flops=-1.0)
