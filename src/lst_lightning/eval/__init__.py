"""Zero-shot evaluation: spoken and written story completion in four directions, minimal pairs.

- :mod:`tasks`: the benchmark format (JSON lines with text and units) and loaders for public sets.
- :mod:`render`: text -> speech units (the generated voice, or TTS + the unit tokenizer).
- :mod:`build_sets`, :mod:`minimal_pairs`: the embedded sets, built offline from held-out text.
- :mod:`scoring`: candidate documents per direction, packed batches, log-likelihoods.
- :mod:`heuristics`: no-model baselines (length, overlap, in-vocabulary, n-gram LMs) per set, and
  the 95% Wilson intervals; a set a heuristic solves beyond chance + 2 SE is flagged.
- :mod:`runner`, :mod:`report`: accuracies per benchmark x direction, JSON / markdown / TensorBoard.
- ``python -m lst_lightning.eval --ckpt PATH``: evaluate a checkpoint (see :mod:`.__main__`).
"""

from lst_lightning.eval.runner import EvalResult, evaluate, evaluate_benchmark
from lst_lightning.eval.scoring import HEADLINE_RULE, RULES, build_candidate, score_candidates
from lst_lightning.eval.tasks import DIRECTIONS, Benchmark, BenchmarkItem, load_benchmarks

__all__ = [
    "DIRECTIONS",
    "HEADLINE_RULE",
    "RULES",
    "Benchmark",
    "BenchmarkItem",
    "EvalResult",
    "build_candidate",
    "evaluate",
    "evaluate_benchmark",
    "load_benchmarks",
    "score_candidates",
]
