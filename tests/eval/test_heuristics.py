"""No-model heuristics: intervals, the n-gram models, flagging a planted set, the report."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lst_lightning.eval.heuristics import (
    NGramLM,
    TrainingCounts,
    beats_chance,
    benchmark_heuristics,
    heuristics_markdown,
    heuristics_report,
    read_heuristics,
    wilson_interval,
)
from lst_lightning.eval.report import write_results
from lst_lightning.eval.runner import EvalResult
from lst_lightning.eval.tasks import Benchmark, BenchmarkItem


def test_wilson_interval_and_the_flag_rule():
    lo, hi = wilson_interval(0.5, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    lo, hi = wilson_interval(1.0, 20)
    assert hi == 1.0 and lo == pytest.approx(0.8389, abs=1e-4)  # never a zero-width interval
    assert wilson_interval(0.0, 0) == (0.0, 1.0)
    # 600 two-way items: SE at chance is 2.04 points, so > 54.08% is flagged
    assert beats_chance(0.541, 600, 0.5) and not beats_chance(0.540, 600, 0.5)
    assert not beats_chance(0.288, 500, 0.25) and beats_chance(0.29, 500, 0.25)


def test_ngram_model_is_a_distribution_and_learns_the_order():
    lm = NGramLM(2, [list("abab"), list("abba")])
    seen = ["a", "b"]
    for history in ([], ["a"], ["b"], ["z"]):
        total = sum(lm.prob(history, s) for s in seen) + lm.prob(history, "unknown")
        # the unseen remainder is spread uniformly over one more (unknown) symbol
        assert 0.99 < total <= 1.0 + 1e-9
    assert lm.logprob([], "ab") > lm.logprob([], "aa")
    assert math.isfinite(lm.logprob(["q"], "qq"))


def _planted(n: int, rng: np.random.Generator) -> Benchmark:
    """Two-way items whose correct ending is always the shorter one: trivially solvable."""
    items = []
    for i in range(n):
        label = int(rng.integers(2))
        endings = ["the end came", "the long end came"]
        if label:
            endings.reverse()
        units = [tuple(range(3)), tuple(range(5))]
        if label:
            units.reverse()
        items.append(
            BenchmarkItem(f"p/{i}", "and then", tuple(endings), label, (1, 2), tuple(units))
        )
    return Benchmark("planted", tuple(items))


def test_a_heuristic_that_solves_a_planted_set_is_flagged(eval_corpus):
    counts = TrainingCounts.from_corpus(eval_corpus)
    rows = {
        (r["form"], r["heuristic"]): r
        for r in benchmark_heuristics(_planted(60, np.random.default_rng(0)), counts)
    }
    assert rows[("written", "shorter (chars)")]["accuracy"] == 1.0
    assert rows[("written", "shorter (chars)")]["flagged"]
    assert rows[("written", "longer (chars)")]["accuracy"] == 0.0
    assert not rows[("written", "longer (chars)")]["flagged"]
    assert rows[("spoken", "shorter (units)")]["flagged"]
    # the same prompt-overlap for both endings: a tie, so chance exactly and no flag
    assert rows[("written", "prompt word overlap")]["accuracy"] == 0.5
    assert not rows[("written", "prompt word overlap")]["flagged"]


def test_report_on_the_built_sets_and_beside_the_models(eval_corpus, sets_dir, tmp_path):
    report = read_heuristics(sets_dir)
    assert report == heuristics_report(eval_corpus, sets_dir)  # written by build_sets
    assert set(report["sets"]) == {"storycloze", "topic", "hellaswag", "swuggy", "sblimp"}
    swuggy = {(r["form"], r["heuristic"]): r for r in report["sets"]["swuggy"]}
    # length-matched minimal pairs: no length heuristic can do better than chance
    for key in (
        ("written", "shorter (chars)"),
        ("spoken", "shorter (units)"),
        ("spoken", "longer (units)"),
    ):
        assert not swuggy[key]["flagged"], key
    # the written lexical test is a test of the training vocabulary: that is flagged, not hidden
    assert swuggy[("written", "in-vocabulary")]["accuracy"] > 0.9
    assert swuggy[("written", "in-vocabulary")]["flagged"]
    table = heuristics_markdown(report)
    assert "| written | in-vocabulary |" in table and "(!)**" in table
    result = EvalResult(
        "swuggy",
        "T->T",
        24,
        2,
        0.5,
        {"per_char": 0.5, "per_token": 0.5, "sum": 0.75},
        interval={"sum": list(wilson_interval(0.75, 24))},
        headline_rule="sum",
    )
    _, md = write_results(tmp_path, [result], sets_dir=str(sets_dir))
    text = md.read_text()
    assert "| swuggy | T->T | 75.0 [55.1, 88.0] (acc/sum) |" in text
    assert "**in-vocabulary" in text  # the strongest written heuristic, flagged, beside the model
    assert (
        "No-model heuristics" in text
        and "Flagged sets" in text
        and "swuggy (written: in-vocabulary" in text
    )
