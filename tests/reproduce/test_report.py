"""The report and figure writers on a small made-up results dict (no training)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from lst_lightning.callbacks.budget import BudgetCheckpoints
from lst_lightning.reproduce import document, verdicts
from lst_lightning.reproduce.plots import benchmark_plot, bits_vs_flops
from lst_lightning.reproduce.report import summary


def record(system: str, seed: int, speech: float, text: float, kind: str = "flops") -> dict:
    curve = [
        {
            "fraction": f,
            "step": round(40 * f),
            "flops": 1e12 * f,
            "tokens": round(2e4 * f),
            "speech_bits_per_second": speech / f,
            "text_bits_per_char": text / f,
        }
        for f in (0.25, 0.5, 0.75, 1.0)
    ]
    bench = [
        {
            "benchmark": "swuggy", "direction": "S->S", "items": 40, "choices": 2, "chance": 0.5,
            "accuracy": {"sum": 0.6}, "interval": {"sum": [0.45, 0.73]}, "headline_rule": "sum",
        }
    ]  # fmt: skip
    plan = {
        "system": system, "scale": "main", "seed": seed, "kind": kind, "budget": 1e12,
        "max_steps": 40, "predicted_flops": 1e12, "predicted_tokens": 20000, "same_as": None,
    }  # fmt: skip
    return {
        "plan": plan, "steps": 40, "flops": 1e12, "tokens": 20000, "stopped_at_budget": True,
        "train_seconds": 30.0, "curve": curve, "benchmarks": bench if seed == 0 else None,
    }  # fmt: skip


RECORDS = [
    record("tiny_baseline", 0, 100.0, 3.0),
    record("tiny_baseline", 1, 102.0, 3.1),
    record("tiny_baseline", 2, 101.0, 3.0),
    record("tiny_lst_static", 0, 110.0, 2.9),
    record("tiny_lst_static", 1, 111.0, 3.2),
    record("tiny_lst_static", 2, 112.0, 2.95),
]


def test_summary_pairs_lst_with_the_baseline_by_seed() -> None:
    s = summary(RECORDS)
    assert len(s["rows"]) == 2
    (paired,) = s["paired"]
    sp = paired["speech_bits_per_second"]
    assert sp["mean"] == pytest.approx(10.0) and sp["n"] == 3 and sp["wins"] == 0
    assert sp["low"] > 0  # 10, 9, 11: LST worse, clearly
    tx = paired["text_bits_per_char"]
    assert tx["low"] < 0 < tx["high"]  # -0.1, +0.1, -0.05: the interval spans 0 with 3 seeds
    base = next(r for r in s["rows"] if r["system"] == "tiny_baseline")
    assert base["speech_bits_per_second"][0] == pytest.approx(101.0)
    assert [c["fraction"] for c in base["curve"]] == [0.25, 0.5, 0.75, 1.0]
    lines = verdicts(s)
    assert "**LST worse**" in lines[0] and "not separated" in lines[0]


def test_document_and_figures(tmp_path: Path) -> None:
    s = summary(RECORDS)
    png = bits_vs_flops(s, [("main", "made up")], tmp_path / "bits.png")
    bench = benchmark_plot(RECORDS, tmp_path / "bench.png")
    for path in (png, bench):
        assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert benchmark_plot([r for r in RECORDS if r["plan"]["seed"]], tmp_path / "none.png") is None
    meta = {
        "date": "d", "machine": "m", "cores": 2, "threads": 2, "wall": "1 min", "load": "0",
        "runs": "runs/x", "run_minutes": 3.0, "trained": 6,
    }  # fmt: skip
    budgets = {"main": {"flops": 1e12, "tokens": 2e4}, "speech64": {"flops": 1e12, "tokens": 2e4}}
    text = document(RECORDS, s, budgets, {"main": 0.3}, meta, True, "figures", ["| x |"])
    assert "### `main` at equal training FLOPs" in text
    assert "| Base SpeechLLM | 3 | 40 |" in text and "101.0 +- 1.0" in text
    assert "+10.0 [" in text  # the paired difference with its interval
    assert "![bits vs FLOPs](figures/bits_vs_flops.png)" in text
    assert "| `main/tiny_lst_static` | 2 | flops 1e+12 | 40 | 40 | yes |" in text
    assert "Partial" not in text
    partial = document(RECORDS, s, budgets, {}, meta, True, "f", [], ["main/x/flops-seed3"])
    assert "**Partial: 1 of the 7 planned runs" in partial and "`main/x/flops-seed3`" in partial


def test_budget_checkpoints_fire_once_per_fraction() -> None:
    saved: list[tuple[str, int]] = []
    trainer = SimpleNamespace(
        fit_loop=SimpleNamespace(_should_accumulate=lambda: False), global_step=0, log_dir="/x"
    )
    trainer.save_checkpoint = lambda path, weights_only: saved.append((path, trainer.global_step))
    module = SimpleNamespace(flops_seen=0.0)
    callback = BudgetCheckpoints("flops", 100.0, dirpath="/ck")
    for step in range(1, 9):  # 15 FLOPs per step: 25 % at step 2, 50 % at 4, 75 % at 5, 100 % at 7
        trainer.global_step, module.flops_seen = step, 15.0 * step
        callback.on_train_batch_end(trainer, module)
    assert saved == [
        ("/ck/budget_025.ckpt", 2), ("/ck/budget_050.ckpt", 4),
        ("/ck/budget_075.ckpt", 5), ("/ck/budget_100.ckpt", 7),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="kind"):
        BudgetCheckpoints("steps", 1.0)
