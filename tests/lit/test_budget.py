"""The compute-controlled experiment stops at its FLOPs budget (within one step), logs it, and the
cumulative FLOPs survive a resume; the comparison experiments share their budgets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from lst_lightning.cli import main

from .test_cli import ROOT, fit, scalars

BUDGET = 1.0e10
"""About four steps of the shrunken model below (~2.4e9 training FLOPs per step)."""
SHRINK = [
    "--model.network.global_model.n_layers=1",
    "--data.packing.max_patches=64",
    "--trainer.max_steps=40",
    "--trainer.val_check_interval=100",
    "--checkpoint.every_n_train_steps=1",
]


def budget_callbacks(max_flops: float) -> list[str]:
    budget = {
        "class_path": "lst_lightning.callbacks.budget.ComputeBudget",
        "init_args": {"max_flops": max_flops},
    }
    # the throughput monitor is the CLI's own (key `throughput`)
    return [
        "--trainer.callbacks=" + json.dumps([budget]),
        "--throughput.window_size=2",
        "--throughput.peak_flops=1e12",
    ]


def load_callbacks(name: str) -> dict[str, dict]:
    config = yaml.safe_load((ROOT / "experiments" / f"{name}.yaml").read_text())
    return {
        c["class_path"].rsplit(".", 1)[1]: c["init_args"] for c in config["trainer"]["callbacks"]
    }


def test_comparison_experiments_share_their_budgets() -> None:
    lst = load_callbacks("tiny_compute_controlled_lst")["ComputeBudget"]
    base = load_callbacks("tiny_compute_controlled_baseline")["ComputeBudget"]
    assert lst == base and float(lst["max_flops"]) > 0
    lst = load_callbacks("tiny_data_controlled_lst")["TokenBudget"]
    base = load_callbacks("tiny_data_controlled_baseline")["TokenBudget"]
    assert lst == base and int(lst["max_tokens"]) > 0


def test_compute_budget_stops_the_experiment(tiny_corpus: Path, tmp_path: Path) -> None:
    exp = "tiny_compute_controlled_lst"
    fit(exp, tiny_corpus, tmp_path, *SHRINK, *budget_callbacks(BUDGET))
    run = tmp_path / exp / "run"
    logged = scalars(run)
    flops = logged["train/flops_seen"]
    assert 2 <= len(flops) < 40, "the budget, not max_steps, must end the run"
    assert flops[-1] >= BUDGET > flops[-2], "stop at the first step that reaches the budget"
    assert logged["budget/flops_reached"] == [pytest.approx(flops[-1], rel=1e-6)]
    assert logged["train/device/mfu"], "the throughput monitor logs MFU with a peak override"
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == len(flops)
    assert last["flops_seen"] == pytest.approx(flops[-1], rel=1e-6)


def test_every_comparison_and_cluster_experiment_parses(capsys: pytest.CaptureFixture) -> None:
    for name in (
        "tiny_compute_controlled_lst",
        "tiny_compute_controlled_baseline",
        "tiny_data_controlled_lst",
        "tiny_data_controlled_baseline",
        "lst_1b_fsdp",
        "baseline_1b_fsdp",
        "lst_1b_ddp",
    ):
        with pytest.raises(SystemExit) as done:
            main(["fit", "--config", str(ROOT / "experiments" / f"{name}.yaml"), "--print_config"])
        assert done.value.code in (0, None), name
    assert "BlockFSDPStrategy" in capsys.readouterr().out


@pytest.mark.slow
def test_cumulative_flops_survive_resume(tiny_corpus: Path, tmp_path: Path) -> None:
    exp = "tiny_compute_controlled_lst"
    fit(exp, tiny_corpus, tmp_path, *SHRINK, *budget_callbacks(BUDGET))
    run = tmp_path / exp / "run"
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    # Resume with twice the budget: the count continues from the checkpoint, not from zero.
    fit(
        exp,
        tiny_corpus,
        tmp_path,
        *SHRINK,
        *budget_callbacks(2 * BUDGET),
        f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
    )
    resumed = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert resumed["global_step"] > last["global_step"]
    assert resumed["flops_seen"] >= 2 * BUDGET
    per_step = last["flops_seen"] / last["global_step"]
    assert resumed["flops_seen"] - per_step * 1.5 < 2 * BUDGET
