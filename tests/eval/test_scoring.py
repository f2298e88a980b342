"""Scoring: token streams per direction, memorised / untrained models, and equality with the loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from lst_lightning.data.stream.batch import IGNORE_INDEX
from lst_lightning.data.stream.packing import collate, pack_documents
from lst_lightning.data.vocab import SpeechSpan, TextSpan, TokenSpace
from lst_lightning.eval.runner import evaluate, evaluate_benchmark
from lst_lightning.eval.scoring import (
    build_candidate,
    choice_credit,
    pack_candidates,
    score_candidates,
)
from lst_lightning.eval.tasks import DIRECTIONS, Benchmark, BenchmarkItem
from lst_lightning.lit.module import SpeechTextLM
from lst_lightning.model import BaselineConfig, build_model

from .conftest import tiny_lst_config

PATCH = 4


class PrefixOracle(nn.Module):
    """A model that has memorised some documents: after a prefix of any of them it puts a large
    logit on every token that followed that prefix, elsewhere it is uniform (a trie over the
    documents). It finds document starts from ``doc_ids``, so it also checks that packed
    candidates are laid out as separate documents."""

    def __init__(self, documents: list[np.ndarray], vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.root: dict = {}
        for doc in documents:
            node = self.root
            for tok in doc.tolist():
                node = node.setdefault(tok, {})

    def forward(self, tokens, doc_ids, patch_lengths):
        b, t = tokens.shape
        logits = torch.zeros(b, t, self.vocab_size)
        rows, ids = tokens.tolist(), doc_ids.tolist()
        for r in range(b):
            node: dict | None = None
            for j in range(t):
                if ids[r][j] < 0:
                    break
                if j == 0 or ids[r][j] != ids[r][j - 1]:
                    node = self.root
                node = node.get(rows[r][j]) if node is not None else None
                if node:
                    logits[r, j, list(node)] = 20.0
        return logits


def memorised(benchmark: Benchmark, space: TokenSpace, pick) -> PrefixOracle:
    docs = [
        build_candidate(item, pick(item), d, space, PATCH).tokens
        for item in benchmark.items
        for d in benchmark.directions()
    ]
    return PrefixOracle(docs, space.vocab_size)


@pytest.mark.parametrize("name", ["storycloze", "hellaswag", "swuggy"])
def test_memorised_correct_endings_score_100_and_wrong_ones_0(name, benchmarks, eval_space):
    bench = benchmarks[name].subset(12)
    right = memorised(bench, eval_space, lambda item: item.label)
    wrong = memorised(bench, eval_space, lambda item: (item.label + 1) % item.num_choices)
    for model, expected in ((right, 1.0), (wrong, 0.0)):
        results = evaluate(model, [bench], eval_space, PATCH, max_tokens=512, max_rows=4)
        assert {r.direction for r in results} == set(bench.directions())
        for r in results:
            assert r.accuracy == {"per_char": expected, "per_token": expected, "sum": expected}, r


def test_untrained_model_is_near_chance(benchmarks, eval_space):
    torch.manual_seed(0)
    net = build_model(tiny_lst_config(eval_space.vocab_size))
    results = evaluate(
        net,
        [benchmarks["storycloze"], benchmarks["topic"]],
        eval_space,
        PATCH,
        directions=["S->S", "T->T"],
    )
    # Pool the accuracies: n two-way choices; 3.5 binomial standard deviations of tolerance.
    n = sum(r.items for r in results)
    for rule in ("per_char", "per_token", "sum"):
        acc = sum(r.accuracy[rule] * r.items for r in results) / n
        tolerance = 3.5 * math.sqrt(0.25 / n)
        assert abs(acc - 0.5) <= tolerance, (rule, acc, tolerance)


def test_scores_equal_the_training_loss_of_a_direct_forward_pass(benchmarks, eval_space):
    torch.manual_seed(1)
    module = SpeechTextLM(network=tiny_lst_config(eval_space.vocab_size)).eval()
    items = benchmarks["hellaswag"].items[:1] + benchmarks["storycloze"].items[:2]
    for direction in DIRECTIONS:
        cands = [
            build_candidate(item, k, direction, eval_space, PATCH)
            for item in items
            for k in range(item.num_choices)
        ]
        # Packed several candidates per row, in a different order from the list.
        scores = score_candidates(module.net, cands, eval_space, max_tokens=700, max_rows=3)
        for cand, score in zip(cands, scores, strict=True):
            # One document alone, through the training packer and collate, only ending targets kept.
            rows = list(
                pack_documents(
                    [(cand.tokens, cand.patch_lengths)],
                    "patches",
                    4096,
                    4096,
                    eval_space.pad_id,
                    eval_space.is_unit,
                )
            )
            batch = collate(rows)
            keep = torch.zeros_like(batch.targets, dtype=torch.bool)
            keep[0, cand.start - 1 : cand.end - 1] = True
            batch.targets[~keep] = IGNORE_INDEX
            with torch.no_grad():
                loss = module.losses(batch)["loss"]
            assert score == pytest.approx(-loss.item() * cand.num_scored, rel=1e-4, abs=1e-3)


def test_four_directions_use_the_right_modality(benchmarks, eval_space):
    item = benchmarks["storycloze"].items[0]
    space = eval_space
    for direction in DIRECTIONS:
        src, dst = direction.split("->")
        for k in range(item.num_choices):
            cand = build_candidate(item, k, direction, space, PATCH)
            spans = space.decode_document(cand.tokens.tolist())
            prompt = SpeechSpan(item.prompt_units) if src == "S" else TextSpan(item.prompt)
            ending = SpeechSpan(item.ending_units[k]) if dst == "S" else TextSpan(item.endings[k])
            if src == dst == "S":
                assert spans == [SpeechSpan(prompt.units + ending.units)]
            elif src == dst == "T":
                assert spans == [TextSpan(f"{prompt.text} {ending.text}")]
            else:
                assert spans == [prompt, ending]
            scored = cand.tokens[cand.start : cand.end]
            # Only the ending's own tokens are scored: all units, or all text, no marker/EOS.
            if dst == "S":
                assert space.is_unit(scored).all()
                assert [int(i) - space.unit_offset for i in scored] == list(item.ending_units[k])
            else:
                assert space.is_text(scored).all()
                text = space.decode_text(scored.tolist())
                assert text.strip() == item.endings[k]
            context = cand.tokens[: cand.start]
            marker = space.speech_id if src == "S" else space.text_id
            assert context[1] == marker
            assert cand.tokens[cand.end] == space.eos_id and cand.end == len(cand.tokens) - 1
            # Static patches: text and specials one token each, speech runs in chunks of <= 4.
            assert cand.patch_lengths.sum() == len(cand.tokens)
            assert cand.patch_lengths.max() <= PATCH


def test_minimal_pairs_have_only_same_modality_directions(benchmarks, eval_space):
    bench = benchmarks["sblimp"]
    assert bench.directions() == ("S->S", "T->T")
    item = bench.items[0]
    cand = build_candidate(item, 0, "S->S", eval_space, PATCH)
    assert cand.tokens[1] == eval_space.speech_id and cand.start == 2
    with pytest.raises(ValueError, match="no form for direction S->T"):
        build_candidate(item, 0, "S->T", eval_space, PATCH)


def test_packing_does_not_change_scores_and_baseline_uses_token_patches(benchmarks, eval_space):
    torch.manual_seed(2)
    net = build_model(tiny_lst_config(eval_space.vocab_size)).eval()
    items = benchmarks["topic"].items[:4]
    cands = [build_candidate(i, k, "T->S", eval_space, PATCH) for i in items for k in range(2)]
    one_per_row = score_candidates(net, cands, eval_space, max_tokens=2, max_rows=1)
    packed = score_candidates(net, cands, eval_space, max_tokens=4096, max_rows=8)
    np.testing.assert_allclose(one_per_row, packed, rtol=1e-4, atol=1e-4)
    assert len(pack_candidates(cands, 4096, 8, eval_space)) == 1
    base = build_model(BaselineConfig(vocab_size=eval_space.vocab_size))
    cand = build_candidate(items[0], 0, "S->S", eval_space, None)
    assert (cand.patch_lengths == 1).all()
    assert np.isfinite(score_candidates(base, [cand], eval_space)).all()


def test_ties_share_credit_and_text_free_items_have_no_per_char_score(eval_space):
    assert choice_credit(np.array([-1.0, -1.0]), 0) == 0.5
    assert choice_credit(np.array([-1.0, -2.0, -1.0, -3.0]), 1) == 0.0
    item = BenchmarkItem("x/0", None, None, 1, (3, 4, 5), ((6, 7), (8, 9, 10)))
    bench = Benchmark("spoken", (item,))
    assert bench.directions() == ("S->S",)
    oracle = PrefixOracle(
        [build_candidate(item, 1, "S->S", eval_space, PATCH).tokens], eval_space.vocab_size
    )
    result = evaluate_benchmark(oracle, bench, "S->S", eval_space, PATCH)
    assert result.accuracy == {"per_char": None, "per_token": 1.0, "sum": 1.0}
