"""Headline metrics: bits per second / per character on the fixed held-out set, paired statistics."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lst_lightning.data.records import read_aligned_jsonl
from lst_lightning.data.vocab import TokenSpace
from lst_lightning.reproduce.metrics import bits, held_out, mean_sd, paired_difference


def test_paired_difference_on_made_up_numbers() -> None:
    d = paired_difference([1.0, 2.0, 3.0], [2.0, 4.0, 3.0])  # differences -1, -2, 0
    assert d.mean == pytest.approx(-1.0)
    half = 4.303 * 1.0 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert (d.low, d.high) == (
        pytest.approx(-1 - half, abs=1e-3),
        pytest.approx(-1 + half, abs=1e-3),
    )
    assert d.n == 3 and d.wins == 2
    one = paired_difference([1.0], [3.0])
    assert one.mean == -2.0 and math.isnan(one.low) and one.wins == 1
    with pytest.raises(ValueError, match="equal"):
        paired_difference([1.0], [1.0, 2.0])


def test_mean_sd() -> None:
    assert mean_sd([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert math.isnan(mean_sd([5.0])[1])


@pytest.mark.parametrize("patch_size", [None, 4])
def test_uniform_model_gives_log2_vocab_per_token(small_generated: Path, patch_size) -> None:
    space = TokenSpace(small_generated / "tokenizer.model")
    held = held_out(small_generated, space, patch_size, text_chars=2000)
    frames = sum(
        len(u.units) for u in read_aligned_jsonl(small_generated / "valid.jsonl", space.num_units)
    )
    assert held.seconds == pytest.approx(frames / 25)  # no held-out voice in the generated corpus
    assert held.chars <= 2000 and len(held.text) > 0
    for c in held.speech:  # only the units are scored: not BOS, <s> or EOS
        assert c.tokens[1] == space.speech_id and c.num_scored == len(c.tokens) - 3
        assert c.patch_lengths.sum() == len(c.tokens)

    def uniform(tokens, doc_ids, patch_lengths):
        return torch.zeros(*tokens.shape, space.vocab_size)

    out = bits(uniform, held, space)
    per_token = math.log2(space.vocab_size)
    assert out["speech_bits_per_second"] == pytest.approx(per_token * 25)  # one unit per frame
    pieces = sum(c.num_scored for c in held.text)
    assert out["text_bits_per_char"] == pytest.approx(per_token * pieces / held.chars)
    assert np.isfinite(list(out.values())).all()
