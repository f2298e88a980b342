"""The unit CTC recogniser (second judge) learns a units -> characters mapping and round-trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lst_lightning.downstream.unit_ctc import (
    UnitCTCConfig,
    UnitRecognizer,
    evaluate,
    train_unit_ctc,
)

ALPHABET = "abcde "


def _pairs(n: int, seed: int) -> list[tuple[list[int], str]]:
    """Each character is spoken as 3 frames of its own units (space: 2 silence frames)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        words = [
            "".join(rng.choice(list("abcde"), rng.integers(1, 4)))
            for _ in range(rng.integers(1, 4))
        ]
        text = " ".join(words)
        units = []
        for c in text:
            units += (
                [10, 10]
                if c == " "
                else [2 * ALPHABET.index(c), 2 * ALPHABET.index(c) + 1, 2 * ALPHABET.index(c) + 1]
            )
        pairs.append((units, text))
    return pairs


def test_learns_a_mapping_and_round_trips(tmp_path: Path) -> None:
    config = UnitCTCConfig(num_units=12, dim=32, conv_layers=2)
    recognizer = train_unit_ctc(_pairs(64, 0), config, epochs=20, batch_size=16, lr=1e-2, seed=0)
    held = _pairs(16, 1)
    rates = evaluate(recognizer, held)
    assert rates.cer < 0.05, rates
    recognizer.save(tmp_path / "ctc.pt")
    again = UnitRecognizer.load(tmp_path / "ctc.pt")
    assert again.transcribe_all([u for u, _ in held]) == recognizer.transcribe_all(
        [u for u, _ in held]
    )
    assert again.transcribe_units([]) == ""


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no \\(units, transcript\\) pair"):
        train_unit_ctc([([], "a"), ([1], "?!")], UnitCTCConfig(num_units=4, dim=8, conv_layers=1))
    with pytest.raises(ValueError, match="not a saved unit CTC"):
        import torch

        torch.save({"kind": "x"}, tmp_path / "x.pt")
        UnitRecognizer.load(tmp_path / "x.pt")
