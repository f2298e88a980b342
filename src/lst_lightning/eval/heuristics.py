"""No-model heuristics: how far each benchmark can be solved without a language model at all.

A benchmark separates systems only if the surface of its items does not already give the answer.
For every set, each heuristic below picks a choice per item from the item alone (and counts from
the *training* text and units, never the held-out text); its accuracy, with a 95% interval, is
written to ``heuristics.json`` beside the sets and printed beside the models' results. A set where
a heuristic beats chance by more than 2 standard errors (the binomial SE at chance,
``sqrt(c (1 - c) / n)``) is **flagged**: a model's accuracy there may come from that cue.

Written form (the ending's text, prompt's text):

- ``shorter (chars)`` / ``longer (chars)``: the fewest / most characters;
- ``fewer BPE pieces``: the fewest pieces of the training text tokenizer;
- ``prompt word overlap``: the largest share of ending words also in the prompt (story sets);
- ``in-vocabulary``: the largest share of ending words seen in the training text;
- ``word 2-gram LM``: the highest summed log-probability of the ending's words given the prompt's
  last word, under an interpolated absolute-discounting bigram model of the training text;
- ``char 4-gram LM (sum)`` / ``(per char)``: the same with a character 4-gram model, summed and
  per character (the models' headline rule for story sets).

Spoken form (the ending's units, the prompt's units):

- ``shorter (units)`` / ``longer (units)``;
- ``prompt unit overlap``: the largest share of the ending's unit trigrams (runs collapsed) that
  occur in the prompt (story sets);
- ``unit 3-gram LM (sum)`` / ``(per unit)``: a unit trigram model of the training utterances.

Ties share the credit (as for the models), so a heuristic that cannot tell the choices apart
scores chance exactly. ``python -m lst_lightning.eval.heuristics --corpus data/embedded`` prints
the table and rewrites ``heuristics.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import string
import sys
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lst_lightning.data.records import iter_aligned_jsonl, write_text_atomic
from lst_lightning.eval.scoring import choice_credit
from lst_lightning.eval.tasks import Benchmark, BenchmarkItem, load_benchmarks

HEURISTICS_FILE = "heuristics.json"
Z95 = 1.959963984540054
"""Two-sided 95% normal quantile (for the Wilson intervals)."""
FLAG_SE = 2.0
"""A heuristic is flagged when it beats chance by more than this many standard errors."""
CHAR_LM_MAX_CHARS = 2_000_000
"""Training characters the character 4-gram model counts (enough for its statistics, and fast)."""


def wilson_interval(accuracy: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``accuracy`` over ``n`` items (95% by default).

    Better behaved than the normal approximation near 0 and 1 and for small ``n``; fractional
    successes (shared credit for ties) are allowed.
    """
    if n <= 0:
        return (0.0, 1.0)
    p = min(max(accuracy, 0.0), 1.0)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def chance_se(chance: float, n: int) -> float:
    """Binomial standard error of the accuracy of random guessing over ``n`` items."""
    return math.sqrt(chance * (1 - chance) / max(n, 1))


def beats_chance(accuracy: float, n: int, chance: float, se: float = FLAG_SE) -> bool:
    return accuracy > chance + se * chance_se(chance, n)


class NGramLM:
    """An interpolated absolute-discounting n-gram model over any hashable symbols.

    ``P(w | h) = max(c(h w) - D, 0) / c(h) + D T(h) / c(h) P(w | h')`` with ``h'`` the history
    without its oldest symbol, ``T(h)`` the number of distinct symbols seen after ``h``, down to
    a uniform distribution over the seen symbols plus one unknown.
    """

    BOS = ("<bos>",)

    def __init__(
        self, order: int, sequences: Iterable[Sequence[Hashable]], discount: float = 0.75
    ) -> None:
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        self.order, self.discount = order, discount
        self.counts: list[Counter] = [Counter() for _ in range(order)]
        """``counts[k][(h..., w)]``: n-gram counts with ``k`` symbols of history."""
        for seq in sequences:
            padded = [self.BOS] * (order - 1) + list(seq)
            for i in range(order - 1, len(padded)):
                for k in range(order):
                    self.counts[k][tuple(padded[i - k : i + 1])] += 1
        self.totals: list[Counter] = [Counter() for _ in range(order)]
        self.types: list[Counter] = [Counter() for _ in range(order)]
        for k in range(order):
            for gram, c in self.counts[k].items():
                self.totals[k][gram[:-1]] += c
                self.types[k][gram[:-1]] += 1
        self.uniform = 1.0 / (len(self.counts[0]) + 1)

    def prob(self, history: Sequence[Hashable], symbol: Hashable) -> float:
        p = self.uniform
        for k in range(self.order):
            h = tuple(history[len(history) - k :]) if k else ()
            if k > len(history):
                break
            total = self.totals[k].get(h, 0)
            if not total:
                break
            c = self.counts[k].get((*h, symbol), 0)
            p = max(c - self.discount, 0) / total + self.discount * self.types[k][h] / total * p
        return p

    def logprob(self, context: Sequence[Hashable], continuation: Sequence[Hashable]) -> float:
        """Summed natural log-probability of ``continuation`` after ``context``."""
        history = [self.BOS] * (self.order - 1) + list(context)
        total = 0.0
        for symbol in continuation:
            total += math.log(self.prob(history[len(history) - self.order + 1 :], symbol))
            history.append(symbol)
        return total


def _word(w: str) -> str:
    return w.strip(string.punctuation + "\u2018\u2019\u201c\u201d").lower()


def _collapse(units: Sequence[int]) -> list[int]:
    return [u for i, u in enumerate(units) if i == 0 or units[i - 1] != u]


@dataclass
class TrainingCounts:
    """What the heuristics know: the training text, its tokenizer and the training units."""

    vocabulary: set[str]
    word_lm: NGramLM
    char_lm: NGramLM
    unit_lm: NGramLM | None
    pieces: Callable[[str], int] | None

    @classmethod
    def from_corpus(cls, corpus_dir: str | Path) -> TrainingCounts:
        corpus = Path(corpus_dir)
        texts: list[str] = []
        text_path = corpus / "text_train.txt"
        if text_path.is_file():
            texts += [line.strip() for line in text_path.read_text(encoding="utf-8").splitlines()]
        units: list[tuple[int, ...]] = []
        utt_path = corpus / "train.jsonl"
        if utt_path.is_file():
            for utt in iter_aligned_jsonl(utt_path):
                texts.append(utt.transcript)
                units.append(utt.units)
        texts = [t for t in texts if t]
        if not texts:
            raise FileNotFoundError(f"no training text in {corpus} (text_train.txt / train.jsonl)")
        words = [[_word(w) for w in t.split()] for t in texts]
        chars: list[str] = []
        budget = CHAR_LM_MAX_CHARS
        for t in texts:
            if budget <= 0:
                break
            chars.append(t[:budget])
            budget -= len(t)
        pieces = None
        if (corpus / "tokenizer.model").is_file():
            import sentencepiece as spm

            sp = spm.SentencePieceProcessor(model_file=str(corpus / "tokenizer.model"))

            def pieces(text: str) -> int:
                return len(sp.encode(text))

        return cls(
            vocabulary={w for ws in words for w in ws if w},
            word_lm=NGramLM(2, words),
            char_lm=NGramLM(4, chars),
            unit_lm=NGramLM(3, units) if units else None,
            pieces=pieces,
        )


Scorer = Callable[[BenchmarkItem], list[float]]


def heuristics(counts: TrainingCounts, story: bool) -> dict[str, dict[str, Scorer]]:
    """``form -> name -> scorer``: a scorer gives one score per choice, the highest is picked."""

    def text_prompt(item: BenchmarkItem) -> str:
        return item.prompt or ""

    def in_vocab(text: str) -> float:
        ws = [_word(w) for w in text.split()]
        return sum(w in counts.vocabulary for w in ws) / max(len(ws), 1)

    def overlap(item: BenchmarkItem, ending: str) -> float:
        prompt = {_word(w) for w in text_prompt(item).split()}
        ws = [_word(w) for w in ending.split()]
        return sum(w in prompt for w in ws) / max(len(ws), 1)

    def word_lm(item: BenchmarkItem, ending: str) -> float:
        context = [_word(w) for w in text_prompt(item).split()]
        return counts.word_lm.logprob(context, [_word(w) for w in ending.split()])

    def char_lm(item: BenchmarkItem, ending: str) -> float:
        prompt = text_prompt(item)
        context = prompt + " " if prompt else ""
        return counts.char_lm.logprob(context, ending)

    written: dict[str, Scorer] = {
        "shorter (chars)": lambda it: [-len(e) for e in it.endings],
        "longer (chars)": lambda it: [len(e) for e in it.endings],
        "in-vocabulary": lambda it: [in_vocab(e) for e in it.endings],
        "word 2-gram LM": lambda it: [word_lm(it, e) for e in it.endings],
        "char 4-gram LM (sum)": lambda it: [char_lm(it, e) for e in it.endings],
        "char 4-gram LM (per char)": lambda it: [char_lm(it, e) / len(e) for e in it.endings],
    }
    if counts.pieces is not None:
        pieces = counts.pieces
        written["fewer BPE pieces"] = lambda it: [-pieces(e) for e in it.endings]
    if story:
        written["prompt word overlap"] = lambda it: [overlap(it, e) for e in it.endings]

    def unit_overlap(item: BenchmarkItem, ending: Sequence[int]) -> float:
        p = _collapse(item.prompt_units or ())
        grams = {tuple(p[i : i + 3]) for i in range(len(p) - 2)}
        e = _collapse(ending)
        mine = [tuple(e[i : i + 3]) for i in range(len(e) - 2)]
        return sum(g in grams for g in mine) / max(len(mine), 1)

    spoken: dict[str, Scorer] = {
        "shorter (units)": lambda it: [-len(u) for u in it.ending_units],
        "longer (units)": lambda it: [len(u) for u in it.ending_units],
    }
    if story:
        spoken["prompt unit overlap"] = lambda it: [unit_overlap(it, u) for u in it.ending_units]
    if counts.unit_lm is not None:
        lm = counts.unit_lm

        def unit_lm(item: BenchmarkItem, ending: Sequence[int]) -> float:
            return lm.logprob(item.prompt_units or (), ending)

        spoken["unit 3-gram LM (sum)"] = lambda it: [unit_lm(it, u) for u in it.ending_units]
        spoken["unit 3-gram LM (per unit)"] = lambda it: [
            unit_lm(it, u) / len(u) for u in it.ending_units
        ]
    return {"written": written, "spoken": spoken}


def score_heuristic(benchmark: Benchmark, scorer: Scorer) -> float:
    """Accuracy of picking the highest-scoring choice (ties share the credit)."""
    credits = [
        choice_credit(np.asarray(scorer(item), dtype=np.float64), item.label)
        for item in benchmark.items
    ]
    return float(np.mean(credits))


def benchmark_heuristics(benchmark: Benchmark, counts: TrainingCounts) -> list[dict]:
    """One row per (form, heuristic) that applies to ``benchmark``."""
    rows = []
    story = not benchmark.is_minimal_pair
    n, chance = len(benchmark.items), benchmark.chance
    for form, table in heuristics(counts, story).items():
        needs = "has_text" if form == "written" else "has_speech"
        if not all(getattr(item, needs) for item in benchmark.items):
            continue
        for name, scorer in table.items():
            acc = score_heuristic(benchmark, scorer)
            lo, hi = wilson_interval(acc, n)
            rows.append(
                {
                    "form": form,
                    "heuristic": name,
                    "accuracy": acc,
                    "interval": [lo, hi],
                    "items": n,
                    "chance": chance,
                    "flagged": beats_chance(acc, n, chance),
                }
            )
    return rows


def heuristics_report(
    corpus_dir: str | Path, sets_dir: str | Path, sets: Sequence[str] | None = None
) -> dict:
    """Every heuristic on every set of ``sets_dir``, with the training counts of ``corpus_dir``."""
    counts = TrainingCounts.from_corpus(corpus_dir)
    report: dict = {
        "corpus": str(corpus_dir),
        "interval": "Wilson score interval, 95%",
        "flag": f"accuracy > chance + {FLAG_SE:g} SE, SE = sqrt(chance (1 - chance) / items)",
        "sets": {},
    }
    for bench in load_benchmarks(sets_dir, sets):
        report["sets"][bench.name] = benchmark_heuristics(bench, counts)
    return report


def write_heuristics(sets_dir: str | Path, report: dict) -> Path:
    path = Path(sets_dir) / HEURISTICS_FILE
    write_text_atomic(path, json.dumps(report, indent=2) + "\n")
    return path


def read_heuristics(sets_dir: str | Path) -> dict | None:
    """The report written next to the sets, or ``None`` where there is none."""
    path = Path(sets_dir) / HEURISTICS_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def format_accuracy(acc: float, interval: Sequence[float]) -> str:
    """``54.2 [50.2, 58.1]``: accuracy and its 95% interval in %."""
    return f"{100 * acc:.1f} [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


def heuristics_markdown(report: dict) -> str:
    """Rows: form x heuristic; columns: sets. Flagged cells (> chance + 2 SE) are bold with (!)."""
    names = list(report["sets"])
    keys: list[tuple[str, str]] = []
    for rows in report["sets"].values():
        for r in rows:
            if (r["form"], r["heuristic"]) not in keys:
                keys.append((r["form"], r["heuristic"]))
    head = ["form", "heuristic", *names]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for form, name in keys:
        cells = [form, name]
        for s in names:
            row = next(
                (r for r in report["sets"][s] if (r["form"], r["heuristic"]) == (form, name)),
                None,
            )
            if row is None:
                cells.append("")
            else:
                text = format_accuracy(row["accuracy"], row["interval"])
                cells.append(f"**{text} (!)**" if row["flagged"] else text)
        lines.append("| " + " | ".join(cells) + " |")
    chance = ", ".join(
        f"{s} {100 * rows[0]['chance']:.0f}% ({rows[0]['items']} items)"
        for s, rows in report["sets"].items()
        if rows
    )
    note = (
        f"\nAccuracy in % [{report['interval']}]; chance: {chance}. **(!)**: flagged, "
        f"{report['flag']}.\n"
    )
    return "\n".join(lines) + "\n" + note


def flagged(report: dict) -> dict[str, list[str]]:
    """``set -> ["written: in-vocabulary", ...]``: the heuristics that beat chance by > 2 SE."""
    return {
        s: [f"{r['form']}: {r['heuristic']}" for r in rows if r["flagged"]]
        for s, rows in report["sets"].items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="data/embedded", help="corpus folder (training text)")
    parser.add_argument(
        "--sets-dir", default=None, help="benchmark folder (default: <corpus>/eval)"
    )
    parser.add_argument("--sets", nargs="+", default=None)
    args = parser.parse_args(argv)
    sets_dir = Path(args.sets_dir or Path(args.corpus) / "eval")
    try:
        report = heuristics_report(args.corpus, sets_dir, args.sets)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    path = write_heuristics(sets_dir, report)
    print(heuristics_markdown(report))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
