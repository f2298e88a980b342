"""Train one planned run, evaluate its budget checkpoints, and keep a record of it.

Each run trains in its own ``lst-lightning fit`` process (a clean Lightning state per run) from a
configuration written into the run's folder (``config-in.yaml``), with the budget callback as a
guard and :class:`~lst_lightning.callbacks.budget.BudgetCheckpoints` writing weights at 25, 50, 75
and 100 % of the budget. The record (``record.json``) holds what the report needs: seeds, budget,
steps taken, FLOPs, tokens, wall times, the held-out bits at each checkpoint and (first seed only)
the zero-shot benchmark accuracies. A rerun reuses a record whose plan entry is unchanged, so an
interrupted ``make reproduce`` continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

from lst_lightning.callbacks.budget import BudgetCheckpoints
from lst_lightning.reproduce.metrics import HeldOut, bits, held_out
from lst_lightning.reproduce.plan import FRACTIONS, RunSpec, Scale, Settings, run_config

BUDGET_CALLBACKS = {
    "flops": ("lst_lightning.callbacks.budget.ComputeBudget", "max_flops"),
    "tokens": ("lst_lightning.callbacks.budget.TokenBudget", "max_tokens"),
}


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def callbacks(spec: RunSpec, ckpt_dir: Path) -> list[dict]:
    cls, arg = BUDGET_CALLBACKS[spec.kind]
    limit = spec.budget if spec.kind == "flops" else int(spec.budget)
    return [
        {"class_path": cls, "init_args": {arg: limit}},
        {
            "class_path": "lst_lightning.callbacks.budget.BudgetCheckpoints",
            "init_args": {
                "kind": spec.kind,
                "limit": float(spec.budget),
                "fractions": list(FRACTIONS),
                "dirpath": str(ckpt_dir),
            },
        },
    ]


def train(
    spec: RunSpec, base: dict, scale: Scale, s: Settings, folder: Path, data_dir: str
) -> float:
    """Train ``spec`` into ``folder``; returns the wall time of the ``fit`` process."""
    ckpt_dir = folder / "checkpoints"
    config = run_config(
        base, spec.system, scale, s, spec.seed, spec.max_steps, data_dir, callbacks(spec, ckpt_dir)
    )
    config["trainer"]["logger"] = {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": str(folder), "name": "tb", "version": "run"},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config-in.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    log = folder / "fit.log"
    start = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(
            [sys.executable, "-m", "lst_lightning", "fit", "--config", str(path)],
            stdout=out,
            stderr=subprocess.STDOUT,
        ).returncode
    seconds = time.perf_counter() - start
    if code != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise RuntimeError(f"reproduce: {spec.name} failed (exit {code}); {log} ends:\n{tail}")
    return seconds


class HeldOutCache:
    """The held-out set per (token space, patch size): the BPE baseline tokenises it differently."""

    def __init__(self, data_dir: Path, text_chars: int, speech_every: int = 1) -> None:
        self.data_dir, self.text_chars, self.speech_every = data_dir, text_chars, speech_every
        self._cache: dict[tuple, HeldOut] = {}

    def get(self, space, patch_size: int | None) -> HeldOut:
        key = (space.vocab_size, space.num_units, getattr(space, "unit_bpe_size", None), patch_size)
        if key not in self._cache:
            self._cache[key] = held_out(
                self.data_dir, space, patch_size, self.text_chars, self.speech_every
            )
        return self._cache[key]


def evaluate_checkpoints(folder: Path, cache: HeldOutCache) -> list[dict]:
    """Held-out bits and counters at each budget checkpoint of a run."""
    from lst_lightning.eval.__main__ import load_checkpoint
    from lst_lightning.hub.checkpoint import read_checkpoint

    curve = []
    for fraction in FRACTIONS:
        path = folder / "checkpoints" / BudgetCheckpoints.filename(fraction)
        if not path.is_file():
            raise FileNotFoundError(f"reproduce: {path} was not written (budget not reached?)")
        raw = read_checkpoint(path)
        ckpt = load_checkpoint(path)
        held = cache.get(ckpt.space, ckpt.patch_size)
        with torch.inference_mode():
            metrics = bits(ckpt.module.net, held, ckpt.space)
        state = raw["state_dict"]
        curve.append(
            {
                "fraction": fraction,
                "step": int(raw["global_step"]),
                "flops": float(raw.get("flops_seen", 0.0)),
                "tokens": int(state["tokens_seen"]),
                **metrics,
            }
        )
    return curve


def benchmarks(path: Path, items: int) -> list[dict]:
    """Zero-shot accuracies of one checkpoint on the first ``items`` items of every set."""
    from lst_lightning.eval.__main__ import find_sets, load_checkpoint
    from lst_lightning.eval.runner import evaluate
    from lst_lightning.eval.tasks import load_benchmarks

    ckpt = load_checkpoint(path)
    sets = load_benchmarks(find_sets(ckpt, None, None), None, ckpt.num_units)
    results = evaluate(
        ckpt.module.net, [b.subset(items) for b in sets], ckpt.space, ckpt.patch_size
    )
    return [r.to_json() for r in results]


def execute(
    spec: RunSpec,
    base: dict,
    scale: Scale,
    s: Settings,
    runs_root: Path,
    data_dir: str,
    cache: HeldOutCache,
    with_benchmarks: bool,
    done: dict[str, dict],
) -> dict:
    """Train + evaluate ``spec`` (or reuse its record); returns the record."""
    folder = runs_root / spec.name
    plan_entry = dataclasses.asdict(spec)
    record_path = folder / "record.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("plan") == plan_entry and (record.get("benchmarks") or not with_benchmarks):
            return record
    if spec.same_as is not None and spec.same_as in done:
        record = {**done[spec.same_as], "plan": plan_entry, "reused": spec.same_as}
        write_json(record_path, record)
        return record
    train_seconds = train(spec, base, scale, s, folder, data_dir)
    start = time.perf_counter()
    curve = evaluate_checkpoints(folder, cache)
    final = curve[-1]
    record = {
        "plan": plan_entry,
        "steps": final["step"],
        "flops": final["flops"],
        "tokens": final["tokens"],
        "stopped_at_budget": final["step"] == spec.max_steps
        and (final["flops"] if spec.kind == "flops" else final["tokens"]) >= spec.budget,
        "train_seconds": round(train_seconds, 1),
        "curve": curve,
    }
    if with_benchmarks:
        record["benchmarks"] = benchmarks(
            folder / "checkpoints" / BudgetCheckpoints.filename(1.0), s.bench_items
        )
    record["eval_seconds"] = round(time.perf_counter() - start, 1)
    write_json(record_path, record)
    return record
