"""Run benchmarks in every direction they support and collect accuracies under each scoring rule."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from lst_lightning.data.vocab import TokenSpace
from lst_lightning.eval.heuristics import wilson_interval
from lst_lightning.eval.scoring import (
    HEADLINE_RULE,
    RULES,
    Candidate,
    Model,
    build_candidate,
    choice_credit,
    headline_rule,
    rule_scores,
    score_candidates,
)
from lst_lightning.eval.tasks import DIRECTIONS, Benchmark


@dataclass
class EvalResult:
    """Accuracy of one benchmark in one direction (one row of the results table)."""

    benchmark: str
    direction: str
    items: int
    choices: int
    chance: float
    accuracy: dict[str, float | None] = field(default_factory=dict)
    """Per scoring rule; ``None`` where the rule does not apply (per_char without text)."""
    seconds: float = 0.0
    interval: dict[str, list[float] | None] = field(default_factory=dict)
    """Per scoring rule: the 95% Wilson score interval ``[low, high]`` of the accuracy."""
    headline_rule: str = HEADLINE_RULE
    """The rule this benchmark is read by (see :func:`~lst_lightning.eval.scoring.headline_rule`)."""

    def to_json(self) -> dict:
        return asdict(self)


def evaluate_benchmark(
    model: Model,
    benchmark: Benchmark,
    direction: str,
    space: TokenSpace,
    patch_size: int | None,
    max_tokens: int = 1024,
    max_rows: int = 8,
    device: torch.device | str = "cpu",
) -> EvalResult:
    """Score every candidate of every item in one direction and compute the accuracies."""
    start = time.perf_counter()
    candidates: list[Candidate] = []
    spans: list[tuple[int, int]] = []
    for item in benchmark.items:
        first = len(candidates)
        candidates += [
            build_candidate(item, k, direction, space, patch_size) for k in range(item.num_choices)
        ]
        spans.append((first, len(candidates)))
    summed = score_candidates(model, candidates, space, max_tokens, max_rows, device)
    by_rule = rule_scores(summed, candidates)
    accuracy: dict[str, float | None] = {}
    for rule in RULES:
        credits = [
            choice_credit(by_rule[rule][lo:hi], item.label)
            for item, (lo, hi) in zip(benchmark.items, spans, strict=True)
        ]
        accuracy[rule] = None if np.isnan(credits).any() else float(np.mean(credits))
    n = len(benchmark.items)
    interval = {
        rule: None if acc is None else list(wilson_interval(acc, n))
        for rule, acc in accuracy.items()
    }
    return EvalResult(
        benchmark.name,
        direction,
        n,
        benchmark.num_choices,
        benchmark.chance,
        accuracy,
        time.perf_counter() - start,
        interval,
        headline_rule(benchmark),
    )


def evaluate(
    model: Model,
    benchmarks: Sequence[Benchmark],
    space: TokenSpace,
    patch_size: int | None,
    directions: Sequence[str] = DIRECTIONS,
    max_tokens: int = 1024,
    max_rows: int = 8,
    device: torch.device | str = "cpu",
    log: bool = False,
) -> list[EvalResult]:
    """Every benchmark in each requested direction it supports (minimal pairs: S->S, T->T)."""
    for d in directions:
        if d not in DIRECTIONS:
            raise ValueError(f"unknown direction {d!r}; choose from {', '.join(DIRECTIONS)}")
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    results = []
    try:
        for benchmark in benchmarks:
            for d in directions:
                if d not in benchmark.directions():
                    continue
                result = evaluate_benchmark(
                    model, benchmark, d, space, patch_size, max_tokens, max_rows, device
                )
                if log:
                    acc = ", ".join(
                        f"{r} {v:.3f}" for r, v in result.accuracy.items() if v is not None
                    )
                    print(
                        f"  {benchmark.name:>12} {d}: {acc} ({result.items} items, "
                        f"{result.seconds:.1f} s)",
                        flush=True,
                    )
                results.append(result)
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    return results
