"""What ``make reproduce`` trains: systems x scales x seeds x budgets, each with its exact step count.

A comparison at equal FLOPs (or tokens) is only fair if every run's learning-rate schedule ends
where its budget stops it: a run cut off mid-cosine is judged before its learning rate decayed.
The plan therefore finds, before training, the optimiser step at which each run's budget binds
by replaying the run's own training stream (same corpus, mixture, patching, packing and data
seed) through the analytic FLOPs of :mod:`lst_lightning.model.flops`, and sets
``trainer.max_steps`` to that step: the cosine (and a curriculum's T) end at the budget stop, and
the budget callback, kept as a guard, stops training at the same step. The training stream does
not depend on the model, so the replay is exact; the curriculum's stream depends on
``max_steps`` itself, which a fixed-point iteration resolves.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import yaml

SYSTEMS = {
    "tiny_baseline": "Base SpeechLLM",
    "tiny_bpe_baseline": "BPE SpeechLLM",
    "tiny_lst_static": "LST static",
    "tiny_lst_aligned": "LST aligned",
    "tiny_lst_mixed": "LST mixed",
    "tiny_lst_curriculum": "LST curriculum",
}
"""Experiment -> the row of the paper's main table it reproduces."""
BASELINE = "tiny_baseline"
LST_SYSTEMS = ("tiny_lst_static", "tiny_lst_aligned", "tiny_lst_mixed", "tiny_lst_curriculum")
KINDS = ("flops", "tokens")
FRACTIONS = (0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Scale:
    """A model size and data mixture every system of it shares (rows shrunk for the CPU)."""

    name: str
    label: str
    systems: tuple[str, ...]
    lst_local: dict[str, Any] = field(default_factory=dict)
    """Overrides of the LST encoder and decoder (``{"encoder": {...}, "decoder": {...}}``)."""
    global_model: dict[str, Any] = field(default_factory=dict)
    """Overrides of the global transformer (LST's global model and the baselines' transformer)."""
    mixture: dict[str, float] = field(default_factory=dict)
    token_systems: tuple[str, ...] = ()
    """Systems also run at equal tokens (the token budget: LST static's tokens at the FLOPs stop)."""


@dataclass(frozen=True)
class Settings:
    """Run sizes shared by every run of a plan."""

    seeds: tuple[int, ...] = (0, 1, 2)
    ref_steps: int = 100
    """The FLOPs budget is what LST static spends in this many steps at the main scale (seed 0)."""
    batch_size: int = 4
    max_patches: int = 128
    """Global positions per LST row; the baselines' rows hold as many tokens."""
    max_tokens: int = 384
    """Tokens per LST row (at most)."""
    warmup_fraction: float = 0.1
    bench_items: int = 50
    """Benchmark items per set for the zero-shot scores (final checkpoint, first seed only)."""
    text_chars: int = 20000
    """Characters of held-out text scored for bits per character."""
    speech_every: int = 1
    """Score every n-th held-out utterance (1: all 220)."""


MAIN = Scale(
    "main",
    "paper mixture (1/3 interleaved), locals 1x128 + 2x128, global 4x256",
    tuple(SYSTEMS),
    token_systems=("tiny_baseline", "tiny_lst_static"),
)
SPEECH_HEAVY = Scale(
    "speech64",
    "speech-heavy mixture (1/3 interleaved + 1/3 speech-only), locals 1x64 + 1x64, global 4x256",
    ("tiny_baseline", "tiny_lst_static", "tiny_lst_curriculum"),
    lst_local={
        "encoder": {"n_layers": 1, "d_model": 64},
        "decoder": {"n_layers": 1, "d_model": 64},
    },
    mixture={"interleaved": 1 / 3, "speech_only": 1 / 3},
)


def scales(quick: bool) -> tuple[Scale, ...]:
    """The full plan's scales; ``quick`` keeps the baseline and LST static at the main scale."""
    if not quick:
        return (MAIN, SPEECH_HEAVY)
    return (dataclasses.replace(MAIN, systems=("tiny_baseline", "tiny_lst_static")),)


def settings(quick: bool) -> Settings:
    if quick:
        return Settings(seeds=(0, 1), ref_steps=30, bench_items=0, text_chars=10000, speech_every=3)
    return Settings()


@dataclass(frozen=True)
class RunSpec:
    """One training run: system, scale, seed, budget and the step at which the budget binds."""

    system: str
    scale: str
    seed: int
    kind: str
    budget: float
    max_steps: int
    predicted_flops: float
    predicted_tokens: int
    same_as: str | None = None
    """An earlier run that is this one (same system, scale, seeds and step count: the same
    training), whose results this one reuses: LST static stops at the same step under the FLOPs
    budget and under the token budget measured from it."""

    @property
    def name(self) -> str:
        return f"{self.scale}/{self.system}/{self.kind}-seed{self.seed}"


def is_lst(system: str) -> bool:
    return system in LST_SYSTEMS


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def run_config(
    base: dict,
    system: str,
    scale: Scale,
    s: Settings,
    seed: int,
    max_steps: int,
    data_dir: str,
    callbacks: list[dict] | None = None,
) -> dict:
    """The full ``fit`` configuration of one run, from its experiment YAML (``base``).

    Seeds both the model (``seed_everything``) and the data stream (``data.seed``); sizes the
    rows; applies the scale; sets ``max_steps``, a warm-up of ``warmup_fraction`` of it, no
    periodic checkpoints or validation (the held-out metrics are computed from the budget
    checkpoints), and the given callbacks.
    """
    config = copy.deepcopy(base)
    config["seed_everything"] = seed
    trainer = config.setdefault("trainer", {})
    trainer.update(
        max_steps=max_steps,
        limit_val_batches=0,
        val_check_interval=None,
        check_val_every_n_epoch=None,
        log_every_n_steps=5,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks or []),
    )
    config["checkpoint"] = {"save_top_k": 0, "save_last": False, "every_n_train_steps": 0}
    config["throughput"] = {"window_size": 10}
    model = config.setdefault("model", {})
    model["optim"] = _merge(
        model.get("optim", {}), {"warmup_steps": max(2, round(s.warmup_fraction * max_steps))}
    )
    args = model["network"]["init_args"]
    if is_lst(system):
        model["network"]["init_args"] = _merge(
            args, {**scale.lst_local, "global_model": scale.global_model}
        )
    else:
        model["network"]["init_args"] = _merge(args, {"transformer": scale.global_model})
    data = config.setdefault("data", {})
    data["seed"] = seed
    data["corpus"] = _merge(data.get("corpus", {}), {"data_dir": data_dir})
    if scale.mixture:
        data["mixture"] = dict(scale.mixture)
    data["loader"] = _merge(data.get("loader", {}), {"batch_size": s.batch_size})
    if is_lst(system):
        packing = {"mode": "patches", "max_patches": s.max_patches, "max_tokens": s.max_tokens}
    else:  # as many tokens per row as LST has global positions (DESIGN 5)
        packing = {"mode": "tokens", "max_tokens": s.max_patches}
    data["packing"] = packing
    return config


def load_experiment(root: Path, system: str) -> dict:
    path = root / "experiments" / f"{system}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"reproduce: {path} does not exist (system {system!r})")
    return yaml.safe_load(path.read_text())


def budget_step(counts: Iterable[float], budget: float) -> tuple[int, float]:
    """``(steps, total)``: the first step count at which the running sum of per-step ``counts``
    reaches ``budget``, and that sum (what a budget callback stops at)."""
    total = 0.0
    for step, count in enumerate(counts, start=1):
        total += count
        if total >= budget:
            return step, total
    raise ValueError(f"the stream ended before the budget {budget:.4g} was reached ({total:.4g})")


def stream_counts(config: dict, max_steps_for_schedule: int) -> Iterator[tuple[int, int]]:
    """``(training FLOPs, tokens)`` of each training batch of the run ``config`` describes, in
    order, from the same datamodule the run builds (no model: the analytic FLOPs only)."""
    from lst_lightning.hub.checkpoint import network_from_hparams
    from lst_lightning.lit.datamodule import SpeechTextDataModule
    from lst_lightning.model.flops import batch_training_flops

    dm = SpeechTextDataModule(**config["data"])
    dm.prepare_data()
    dm._schedule = dm.resolve_schedule(max_steps_for_schedule)
    dm.setup("fit")
    network = dataclasses.replace(
        network_from_hparams(config["model"]["network"]), vocab_size=dm.vocab_size
    )
    for batch in dm.train_dataloader():
        yield batch_training_flops(network, batch.doc_ids, batch.patch_lengths), batch.num_tokens


def solve_steps(config: dict, kind: str, budget: float, guess: int) -> tuple[int, float, int]:
    """``(steps, flops, tokens)`` at the step where the ``kind`` budget binds for this run.

    The curriculum's patching depends on ``max_steps`` (its T), so the step is a fixed point:
    replay with ``T = guess``, take the binding step as the next guess, until it repeats (a
    2-cycle takes the smaller step, whose schedule ends at or before its budget)."""
    seen: list[int] = []
    strategy = config["data"].get("patching", {}).get("strategy", "static")
    index = 0 if kind == "flops" else 1
    while True:
        rows = list(islice(stream_counts(config, guess), 20 * guess + 100))
        steps, _ = budget_step((r[index] for r in rows), budget)
        if strategy == "curriculum" and steps != guess and steps in seen:
            steps = min(steps, guess)  # a 2-cycle: replay with T = the smaller step
            rows = list(islice(stream_counts(config, steps), steps))
        elif strategy == "curriculum" and steps != guess:
            seen.append(guess)
            guess = steps
            continue
        return steps, float(sum(r[0] for r in rows[:steps])), int(sum(r[1] for r in rows[:steps]))


HEADLINE_SYSTEMS = ("tiny_baseline", "tiny_lst_static", "tiny_lst_curriculum")


def run_order(runs: Sequence[RunSpec]) -> list[RunSpec]:
    """The order runs train in: the headline comparisons first, each group seed by seed, so a
    run cut short still holds whole groups with all their seeds. Groups: the baseline, LST
    static and curriculum at equal FLOPs at the main scale, then at the other scales, then the
    equal-token runs, then the remaining systems. A run that reuses another stays after it."""

    def group(r: RunSpec) -> int:
        if r.kind == "tokens":
            return 2
        if r.system not in HEADLINE_SYSTEMS:
            return 3
        return 0 if r.scale == MAIN.name else 1

    return sorted(runs, key=lambda r: (group(r), r.seed))


def build_plan(
    root: Path,
    data_dir: str,
    quick: bool,
    log=print,
    s: Settings | None = None,
    scale_list: Sequence[Scale] | None = None,
) -> tuple[list[RunSpec], dict]:
    """Every run of the plan with its budget and step count, and the budgets per scale
    (``s`` and ``scale_list`` replace the plan's own, for tests)."""
    s = s or settings(quick)
    runs: list[RunSpec] = []
    budgets: dict[str, dict[str, float]] = {}
    for scale in scale_list or scales(quick):
        ref = run_config(
            load_experiment(root, "tiny_lst_static"),
            "tiny_lst_static",
            scale,
            s,
            s.seeds[0],
            s.ref_steps,
            data_dir,
        )
        rows = list(islice(stream_counts(ref, s.ref_steps), s.ref_steps))
        flops_budget = float(sum(r[0] for r in rows))
        token_budget = float(sum(r[1] for r in rows))
        budgets[scale.name] = {"flops": flops_budget, "tokens": token_budget}
        for system in scale.systems:
            base = load_experiment(root, system)
            kinds = ["flops"] + (["tokens"] if system in scale.token_systems else [])
            for seed in s.seeds:
                for kind in kinds:
                    config = run_config(base, system, scale, s, seed, s.ref_steps, data_dir)
                    budget = budgets[scale.name][kind]
                    steps, flops, tokens = solve_steps(config, kind, budget, s.ref_steps)
                    same = [
                        r.name
                        for r in runs
                        if (r.system, r.scale, r.seed, r.max_steps)
                        == (system, scale.name, seed, steps)
                    ]
                    runs.append(
                        RunSpec(
                            system,
                            scale.name,
                            seed,
                            kind,
                            budget,
                            steps,
                            flops,
                            tokens,
                            same[0] if same else None,
                        )
                    )
                    log(f"plan: {runs[-1].name}: {steps} steps, {flops:.3g} FLOPs, {tokens} tokens")
    return runs, budgets
